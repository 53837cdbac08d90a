from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from bot.errors import ConfigError, StateError
from bot.store import outbox, states
from bot.store import subscriptions as subs
from bot.store.database import Database, async_url
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


async def test_migrations_create_the_schema_and_are_idempotent(db) -> None:
    await db.migrate()
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert {"subscriptions", "deliveries", "state_revisions"} <= names
    assert version == "0002"


async def test_outbox_key_is_unique_per_subscription_and_period(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    period = NOW + timedelta(hours=1)
    first = await outbox.insert(db, [outbox.new_row(sub.id, period, now=NOW)])
    second = await outbox.insert(db, [outbox.new_row(sub.id, period, now=NOW)] * 2)
    assert len(first) == 1 and second == []
    (row,) = await outbox.listing(db, subscription_id=sub.id)
    assert row.delivery_key == f"dlv_{sub.id}_20260105T070000Z" and row.period == period


async def test_claims_are_exclusive_and_leases_expire(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    await outbox.insert(
        db, [outbox.new_row(sub.id, NOW + timedelta(minutes=i), now=NOW) for i in range(10)]
    )
    lease = timedelta(seconds=60)
    a = await outbox.claim(db, owner="a", now=NOW, limit=6, lease=lease)
    b = await outbox.claim(db, owner="b", now=NOW, limit=6, lease=lease)
    assert len(a) == 6 and len(b) == 4 and not {r.id for r in a} & {r.id for r in b}
    assert (
        await outbox.claim(db, owner="c", now=NOW + timedelta(seconds=30), limit=10, lease=lease)
        == []
    )
    # a renewed lease holds; an expired one is taken over
    await outbox.renew(db, [r.id for r in a], owner="a", until=NOW + timedelta(minutes=5))
    taken = await outbox.claim(
        db, owner="c", now=NOW + timedelta(seconds=61), limit=10, lease=lease
    )
    assert {r.id for r in taken} == {r.id for r in b} and all(r.attempts == 2 for r in taken)
    # the old owner can no longer record over the new one's work
    await outbox.record(db, [{"row_id": b[0].id, "status": "delivered"}], owner="b")
    (row,) = await outbox.listing(db, ids=[b[0].id])
    assert row.status == "sending" and row.lease_owner == "c"


async def test_release_returns_rows_to_the_queue(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    await outbox.insert(db, [outbox.new_row(sub.id, NOW, now=NOW)])
    (row,) = await outbox.claim(db, owner="a", now=NOW, limit=1, lease=timedelta(minutes=1))
    await outbox.release(db, [row.id], owner="a", now=NOW)
    (again,) = await outbox.claim(db, owner="b", now=NOW, limit=1, lease=timedelta(minutes=1))
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
