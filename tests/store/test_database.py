from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from bot.delivery import Outcome, Status, Trigger
from bot.errors import ConfigError, StateError
from bot.store import outbox, states
from bot.store import subscriptions as subs
from bot.store.database import HEAD, Database, async_url
from tests.conftest import SEED_STATE, extra_development, write_developments

NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def new_sub(**overrides) -> subs.NewSubscription:
    values = dict(
        name="n",
        kind="generic",
        address="https://example.org/h",
        secrets=("whsec_x",),
        topics=None,
        locale="en",
        timezone="Europe/Paris",
        cron="0 7 * * *",
        skip_empty=False,
        next_fire_at=NOW,
    )
    values.update(overrides)
    return subs.NewSubscription(**values)


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///var/x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///var/x.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_plain_and_driver_urls(url, driver) -> None:
    assert async_url(url).drivername == driver


def test_bad_urls_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unsupported database 'mysql'"):
        async_url("mysql://u@h/db")
    with pytest.raises(ConfigError, match="not a database URL"):
        async_url("::nonsense::")


async def test_unreachable_database_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(
        ConfigError,
        match="cannot open the database postgresql\\+asyncpg://u:\\*\\*\\*@127.0.0.1:1/db",
    ):
        await Database.open("postgresql://u:secret@127.0.0.1:1/db")


async def test_a_missing_postgresql_database_is_named_in_one_line() -> None:
    from tests.dbs import postgres_database

    async with postgres_database() as url:
        missing = url.rsplit("/", 1)[0] + "/briefing_no_such_database"
        with pytest.raises(ConfigError) as caught:
            await Database.open(missing)
    assert str(caught.value).endswith(': database "briefing_no_such_database" does not exist')
    assert "\n" not in str(caught.value) and "sqlalche.me" not in str(caught.value)


async def test_migrations_create_the_schema_and_are_idempotent(db) -> None:
    await db.migrate()
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert {
        "subscriptions",
        "deliveries",
        "state_revisions",
        "signups",
        "feed_polls",
        "feed_entries",
    } <= names
    assert version == HEAD


async def test_outbox_key_is_unique_per_subscription_and_period(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    period = NOW + timedelta(hours=1)
    first = await outbox.insert(db, [outbox.new_row(sub.id, period, now=NOW)])
    second = await outbox.insert(db, [outbox.new_row(sub.id, period, now=NOW)] * 2)
    assert len(first) == 1 and second == []
    (row,) = await outbox.listing(db, subscription_id=sub.id)
    assert row.delivery_id == f"dlv_{sub.id}_20260105T070000Z" and row.period == period


async def test_claims_are_exclusive_and_leases_expire(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    await outbox.insert(
        db, [outbox.new_row(sub.id, NOW + timedelta(minutes=i), now=NOW) for i in range(10)]
    )
    lease = timedelta(seconds=60)
    a = await outbox.claim(db, owner="a", now=NOW, limit=6, lease=lease, max_attempts=8)
    b = await outbox.claim(db, owner="b", now=NOW, limit=6, lease=lease, max_attempts=8)
    assert len(a) == 6 and len(b) == 4 and not {r.id for r in a} & {r.id for r in b}
    assert (
        await outbox.claim(
            db, owner="c", now=NOW + timedelta(seconds=30), limit=10, lease=lease, max_attempts=8
        )
        == []
    )
    # a renewed lease holds; an expired one is taken over
    await outbox.renew(db, [r.id for r in a], owner="a", until=NOW + timedelta(minutes=5))
    taken = await outbox.claim(
        db, owner="c", now=NOW + timedelta(seconds=61), limit=10, lease=lease, max_attempts=8
    )
    assert {r.id for r in taken} == {r.id for r in b} and all(r.attempts == 2 for r in taken)
    # the old owner can no longer record over the new one's work
    done = outbox.Finished(b[0].id, sub.id, Outcome(Status.DELIVERED, "ok", "200", 1))
    await outbox.record(db, [done], owner="b", now=NOW)
    (row,) = await outbox.listing(db, ids=[b[0].id])
    assert row.status == "sending" and row.lease_owner == "c"


async def test_release_returns_rows_to_the_queue(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    await outbox.insert(db, [outbox.new_row(sub.id, NOW, now=NOW)])
    (row,) = await outbox.claim(
        db, owner="a", now=NOW, limit=1, lease=timedelta(minutes=1), max_attempts=8
    )
    await outbox.release(db, [row.id], owner="a", now=NOW)
    (again,) = await outbox.claim(
        db, owner="b", now=NOW, limit=1, lease=timedelta(minutes=1), max_attempts=8
    )
    assert again.id == row.id and again.attempts == 1


async def test_state_import_is_idempotent_and_revisions_follow_changes(db, state_dir) -> None:
    first = await states.import_state(db, SEED_STATE, now=NOW)
    same = await states.import_state(db, SEED_STATE, now=NOW)
    assert first.created and not same.created and first.revision == same.revision
    write_developments(state_dir, extra_development("later"))
    changed = await states.import_state(db, state_dir, now=NOW)
    assert changed.created and changed.revision != first.revision
    source = states.StateSource(db)
    assert len((await source.latest()).developments) == 18
    back = await states.import_state(db, SEED_STATE, now=NOW)
    assert back.created and (await source.latest()).revision == first.revision


async def test_invalid_state_is_not_imported(db, state_dir) -> None:
    await states.import_state(db, SEED_STATE, now=NOW)
    (state_dir / "story.yaml").write_text("story: [broken\n", encoding="utf-8")
    with pytest.raises(StateError):
        await states.import_state(db, state_dir, now=NOW)
    assert len((await states.StateSource(db).latest()).developments) == 17


async def test_upgrading_an_older_schema_keeps_the_data(tmp_path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text as sql

    from bot.store.database import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = await Database.open(url, migrate=False)

    def to_0001(connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")

    async with old.engine.begin() as conn:
        await conn.run_sync(to_0001)
        await conn.execute(sql(
            "INSERT INTO subscriptions (name, kind, address, secrets, locale, timezone, cron, skip_empty, status,"
            " unsubscribe_token, created_at, updated_at) VALUES ('old', 'email', 'a@example.org', '[]', 'en', 'UTC',"
            " '0 7 * * *', 0, 'active', 'tok', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        ))  # fmt: skip
    await old.close()
    db = await Database.open(url)
    try:
        (sub,) = await subs.list_all(db)
        assert sub.name == "old" and sub.address == "a@example.org"
        await outbox.insert(db, [outbox.new_row(sub.id, NOW, now=NOW)])
        (row,) = await outbox.listing(db)
        assert row.sent_by is None
    finally:
        await db.close()


def test_head_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bot.store.database import HEAD, MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


async def test_manual_sends_in_the_same_second_get_their_own_ids(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    first, second = NOW.replace(microsecond=1), NOW.replace(microsecond=2)
    ids = await outbox.insert(
        db,
        [
            outbox.new_row(sub.id, first, now=NOW, trigger=Trigger.MANUAL),
            outbox.new_row(sub.id, second, now=NOW, trigger=Trigger.MANUAL),
        ],
    )
    rows = await outbox.listing(db, ids=ids)
    assert len(rows) == 2 and len({r.delivery_id for r in rows}) == 2


async def test_claims_take_only_the_period_asked_for(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    other = NOW + timedelta(hours=1)
    await outbox.insert(
        db, [outbox.new_row(sub.id, NOW, now=NOW), outbox.new_row(sub.id, other, now=NOW)]
    )
    lease = timedelta(minutes=1)
    (row,) = await outbox.claim(
        db, owner="a", now=NOW, limit=10, lease=lease, max_attempts=8, period=other
    )
    assert row.period == other
    (rest,) = await outbox.claim(db, owner="a", now=NOW, limit=10, lease=lease, max_attempts=8)
    assert rest.period == NOW


async def test_a_row_whose_workers_keep_dying_ends_dead(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    (row_id,) = await outbox.insert(db, [outbox.new_row(sub.id, NOW, now=NOW)])
    lease, moment = timedelta(seconds=10), NOW
    for attempt in (1, 2):
        (row,) = await outbox.claim(
            db, owner=f"w{attempt}", now=moment, limit=1, lease=lease, max_attempts=2
        )
        assert row.attempts == attempt  # claimed, then the worker dies without recording
        moment += timedelta(seconds=11)
    assert (
        await outbox.claim(db, owner="w3", now=moment, limit=1, lease=lease, max_attempts=2) == []
    )
    (row,) = await outbox.listing(db, ids=[row_id])
    assert row.status == "dead" and row.attempts == 2 and row.lease_owner is None
    assert "stopped 2 times" in (row.last_answer or "")


async def test_pausing_or_removing_skips_every_queued_row(db) -> None:
    paused = await subs.add(db, new_sub(), now=NOW)
    removed = await subs.add(db, new_sub(), now=NOW)
    rows = [
        outbox.new_row(paused.id, NOW, now=NOW),
        {  # a manual send's retry, after the receiver answered 500
            **outbox.new_row(
                paused.id, NOW + timedelta(seconds=1), now=NOW, trigger=Trigger.MANUAL
            ),
            "attempts": 1,
            "last_status": "500",
            "last_answer": "HTTP 500: down",
        },
        outbox.new_row(removed.id, NOW, now=NOW, trigger=Trigger.CATCH_UP),
    ]
    ids = [i for row in rows for i in await outbox.insert(db, [row])]  # their own columns
    (retry,) = await outbox.listing(db, ids=[ids[1]])
    assert (retry.last_status, retry.attempts) == ("500", 1)
    await subs.set_status(db, paused.id, subs.PAUSED, now=NOW, reason="on holiday")
    await subs.set_status(db, removed.id, subs.REMOVED, now=NOW, reason="removed")
    found = {r.id: r for r in await outbox.listing(db, ids=ids)}
    assert [found[i].status for i in ids] == ["skipped"] * 3
    assert (found[ids[1]].last_status, found[ids[1]].last_answer) == (
        None,
        "subscription paused: on holiday",
    )  # the receiver's 500 is not shown as the skip's status
    await subs.set_status(db, paused.id, subs.ACTIVE, now=NOW)
    assert {r.status for r in await outbox.listing(db, ids=ids)} == {"skipped"}


async def test_a_manual_send_is_queued_in_one_statement(db) -> None:
    active = await subs.add(db, new_sub(), now=NOW)
    resting = await subs.add(db, new_sub(), now=NOW)
    await subs.set_status(db, resting.id, subs.PAUSED, now=NOW, reason="on holiday")
    moment = NOW.replace(microsecond=123456)
    (only,) = await outbox.queue_manual(db, now=moment)
    (row,) = await outbox.listing(db, ids=[only])
    assert (row.subscription_id, row.trigger, row.status, row.period) == (
        active.id,
        "manual",
        "pending",
        moment,
    )
    assert row.delivery_id == outbox.delivery_id(active.id, moment, trigger=Trigger.MANUAL)
    later = moment + timedelta(seconds=1)
    chosen = [active.id, resting.id]
    both = await outbox.queue_manual(db, now=later, subscription_ids=chosen, force=True)
    triggers = {r.subscription_id: r.trigger for r in await outbox.listing(db, ids=both)}
    assert triggers == {active.id: "manual", resting.id: "forced"}
    # paused since the send was checked, without --force: skipped when taken, not forced
    unforced = await outbox.queue_manual(
        db, now=later + timedelta(seconds=1), subscription_ids=chosen
    )
    triggers = {r.subscription_id: r.trigger for r in await outbox.listing(db, ids=unforced)}
    assert triggers == {active.id: "manual", resting.id: "manual"}
    assert await subs.kinds(db) == {"generic"}


async def test_pruning_keeps_what_the_next_digest_needs(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    days = [NOW - timedelta(days=d) for d in (200, 150, 100, 10)]
    ids = await outbox.insert(db, [outbox.new_row(sub.id, day, now=day) for day in days])
    lease = timedelta(minutes=1)
    claimed = await outbox.claim(db, owner="w", now=NOW, limit=10, lease=lease, max_attempts=8)
    by_period = {row.period: row.id for row in claimed}
    outcomes = {
        days[0]: Status.DELIVERED, days[1]: Status.DEAD, days[2]: Status.DELIVERED,
        days[3]: Status.DELIVERED,
    }  # fmt: skip
    await outbox.record(
        db,
        [
            outbox.Finished(by_period[day], sub.id, Outcome(status, "x", "200", 1), (day, day))
            for day, status in outcomes.items()
        ],
        owner="w",
        now=NOW,
    )
    queued = await outbox.insert(db, [outbox.new_row(sub.id, NOW - timedelta(days=300), now=NOW)])
    removed = await outbox.prune(db, before=NOW - timedelta(days=90))
    left = {r.period: r.status for r in await outbox.listing(db, limit=100)}
    # old dead rows go, and so do old delivered rows a later delivery superseded; the
    # latest delivered row (where the next window starts) and anything queued stay
    assert removed == 3 and len(ids) == 4 and queued
    assert left == {days[3]: "delivered", NOW - timedelta(days=300): "pending"}
    await outbox.prune(db, before=NOW)
    assert {r.period for r in await outbox.listing(db, limit=100)} == {
        days[3],
        NOW - timedelta(days=300),
    }
