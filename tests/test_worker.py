from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from bot.delivery import Outcome, RetryPolicy, Status, Trigger
from bot.digest import DigestRenderer
from bot.errors import ConfigError
from bot.outputs import HttpLimits, OutputContext, TargetPolicy, output_classes
from bot.outputs.webhooks import new_secret
from bot.store import outbox, states
from bot.store import subscriptions as subs
from bot.worker import Worker, send_and_wait
from tests.conftest import SEED_STATE
from tests.outputs.conftest import settings_for
from tests.receivers import hang, reply

PERIOD = datetime(2025, 12, 2, 18, 0, tzinfo=UTC)
QUICK = RetryPolicy(attempts=4, base=0.05, cap=0.1)


def utc_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def ctx(tmp_path):
    context = OutputContext(
        settings=settings_for(tmp_path),
        policy=TargetPolicy(allow_private=True),
        # Generous for a busy machine (parallel tests), yet shorter than hang(3) below.
        limits=HttpLimits(connect_timeout=2.5, total_timeout=2.5),
    )
    yield context
    await context.aclose()


async def add(
    db, url: str, *, kind: str = "generic", skip_empty: bool = False, secrets=None, **extra
) -> subs.Subscription:
    new = subs.NewSubscription(
        name="r",
        kind=kind,
        address=url,
        secrets=secrets if secrets is not None else ((new_secret(),) if kind == "generic" else ()),
        topics=extra.get("topics"),
        locale=extra.get("locale", "en"),
        timezone=extra.get("timezone", "Europe/Paris"),
        cron="0 7 * * *",
        skip_empty=skip_empty,
        next_fire_at=None,
    )
    return await subs.add(db, new, now=utc_now())


async def queue(db, sub_ids, period=PERIOD) -> list[int]:
    return await outbox.insert(db, [outbox.new_row(i, period, now=utc_now()) for i in sub_ids])


def dispatcher(db, ctx, **kwargs) -> Worker:
    kwargs.setdefault("policy", QUICK)
    return Worker(db, ctx, renderer=DigestRenderer(), clock=utc_now, **kwargs)


async def finish(
    d: Worker, ids: list[int], period: datetime | None = None
) -> list[outbox.Delivery]:
    async with asyncio.timeout(30):
        await send_and_wait(d, ids, period=period, horizon=60)
    await d.recorder.flush()
    await d.close()
    return await outbox.listing(d.db, ids=ids, limit=len(ids))


async def test_fan_out_renders_once_and_delivers_each_once(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    url = receiver.on("/fan")
    created = [await add(db, url) for _ in range(40)]
    ids = await queue(db, [s.id for s in created])
    d = dispatcher(db, ctx, concurrency=8)
    done = await finish(d, ids)
    assert {r.status for r in done} == {"delivered"} and all(r.attempts == 1 for r in done)
    assert d.preparer.cache.renders == 1
    hits = receiver.hits("/fan")
    assert sorted(h.headers["webhook-id"] for h in hits) == sorted(r.delivery_id for r in done)
    by_key = {s.id: s for s in created}
    for hit, row in zip(
        sorted(hits, key=lambda h: h.headers["webhook-id"]),
        sorted(done, key=lambda r: r.delivery_id),
        strict=True,
    ):
        payload = Webhook(by_key[row.subscription_id].secrets[0]).verify(hit.body, hit.headers)
        assert payload["digest"]["window_start"] == "2025-12-01T19:00:00+01:00"
    assert all(
        r.window_start == PERIOD - timedelta(hours=24) and r.window_end == PERIOD for r in done
    )


async def test_the_next_window_starts_where_the_last_delivered_one_ended(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    sub = await add(db, receiver.on("/w"))
    await finish(dispatcher(db, ctx), await queue(db, [sub.id], PERIOD))
    # a failed day does not move the window
    receiver.on("/w", reply(500))
    second = PERIOD + timedelta(days=1)
    failed = await finish(
        dispatcher(db, ctx, policy=RetryPolicy(attempts=1)), await queue(db, [sub.id], second)
    )
    assert failed[0].status == "dead"
    receiver.on("/w", reply(200))
    third = PERIOD + timedelta(days=2)
    (row,) = await finish(dispatcher(db, ctx), await queue(db, [sub.id], third))
    assert (row.window_start, row.window_end) == (PERIOD, third)


async def test_receivers_that_fail_for_a_while_then_recover(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    flaky = [
        await add(db, receiver.on("/e500", reply(500), reply(502), reply(200))),
        await add(
            db, receiver.on("/e429", reply(429, "", {"Retry-After": "0"}), reply(200)), kind="slack"
        ),
        await add(db, receiver.on("/hang", hang(3), reply(200)), kind="mattermost"),
        await add(db, receiver.on("/fine")),
    ]
    done = await finish(dispatcher(db, ctx), await queue(db, [s.id for s in flaky]))
    attempts = {r.subscription_id: (r.status, r.attempts) for r in done}
    assert attempts == {
        flaky[0].id: ("delivered", 3),
        flaky[1].id: ("delivered", 2),
        flaky[2].id: ("delivered", 2),
        flaky[3].id: ("delivered", 1),
    }
    assert len({h.headers["webhook-id"] for h in receiver.hits("/e500")}) == 1


async def test_permanent_errors_and_exhausted_retries_are_dead(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    bad = await add(db, receiver.on("/bad", reply(400, "invalid_payload")), kind="slack")
    down = await add(db, receiver.on("/down", reply(503)), kind="slack")
    done = await finish(dispatcher(db, ctx), await queue(db, [bad.id, down.id]))
    outcome = {r.subscription_id: (r.status, r.attempts, r.last_status) for r in done}
    assert outcome == {bad.id: ("dead", 1, "400"), down.id: ("dead", QUICK.attempts, "503")}
    assert (await subs.get(db, bad.id)).status == "active"


async def test_gone_pauses_the_subscription_at_once(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    sub = await add(db, receiver.on("/gone", reply(410, "channel_is_archived")), kind="slack")
    (row,) = await finish(dispatcher(db, ctx), await queue(db, [sub.id]))
    paused = await subs.get(db, sub.id)
    assert (
        row.status == "dead"
        and paused.status == "paused"
        and "gone" in (paused.paused_reason or "")
    )


async def test_repeated_dead_deliveries_pause_the_subscription(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    sub = await add(db, receiver.on("/broken", reply(404, "no_service")), kind="slack")
    for day in range(3):
        assert (await subs.get(db, sub.id)).status == "active"
        await finish(dispatcher(db, ctx), await queue(db, [sub.id], PERIOD + timedelta(days=day)))
    paused = await subs.get(db, sub.id)
    assert paused.status == "paused" and "last 3 deliveries failed" in (paused.paused_reason or "")


async def test_skip_empty_sends_nothing_when_nothing_is_new(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    quiet = await add(db, receiver.on("/quiet"), skip_empty=True)
    later = datetime(2026, 2, 1, 6, tzinfo=UTC)
    (row,) = await finish(dispatcher(db, ctx), await queue(db, [quiet.id], later))
    assert (
        row.status == "skipped"
        and "no news" in (row.last_answer or "")
        and receiver.hits("/quiet") == []
    )
    (news,) = await finish(dispatcher(db, ctx), await queue(db, [quiet.id], PERIOD))
    assert news.status == "delivered" and len(receiver.hits("/quiet")) == 1


async def test_rows_of_a_crashed_worker_are_taken_back(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    sub = await add(db, receiver.on("/takeover"))
    ids = await queue(db, [sub.id])
    crashed = await outbox.claim(
        db, owner="crashed", now=utc_now(), limit=10, lease=timedelta(seconds=1), max_attempts=4
    )
    assert [r.id for r in crashed] == ids
    await asyncio.sleep(1.1)
    (row,) = await finish(dispatcher(db, ctx), ids)
    assert row.status == "delivered" and row.attempts == 2 and len(receiver.hits("/takeover")) == 1


async def test_shutdown_returns_unfinished_sends_to_the_queue(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    slow = await add(db, receiver.on("/slow", hang(5)), kind="mattermost")
    fast = await add(db, receiver.on("/quick"), kind="mattermost")
    ids = await queue(db, [slow.id, fast.id])
    d = dispatcher(db, ctx)
    stop = asyncio.Event()
    runner = asyncio.create_task(d.run(stop, grace=0.3))
    await asyncio.sleep(1.5)  # time for the quick one on a busy machine; /slow still hangs
    stop.set()
    await runner
    rows = {r.subscription_id: r for r in await outbox.listing(db, ids=ids)}
    assert rows[fast.id].status == "delivered"
    assert (
        rows[slow.id].status == "pending"
        and rows[slow.id].attempts == 0
        and rows[slow.id].lease_owner is None
    )


async def test_a_manual_send_waits_for_rows_another_worker_took(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    sub = await add(db, receiver.on("/elsewhere"))
    ids = await queue(db, [sub.id])
    (taken,) = await outbox.claim(
        db, owner="briefing-run", now=utc_now(), limit=1, lease=timedelta(minutes=5), max_attempts=8
    )
    waiting = asyncio.create_task(finish(dispatcher(db, ctx), ids, PERIOD))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    done = outbox.Finished(taken.id, sub.id, Outcome(Status.DELIVERED, "ok", "200", 1))
    await outbox.record(db, [done], owner="briefing-run", now=utc_now())
    (row,) = await asyncio.wait_for(waiting, timeout=10)
    assert row.status == "delivered" and receiver.hits("/elsewhere") == []


PLUGINS = """
import asyncio

from bot.errors import ConfigError
from bot.outputs import Output, Receipt


class BoomOutput(Output):
    name = "boom"
    formats = ("text",)
    calls = 0

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        BoomOutput.calls += 1
        raise RuntimeError(f"a bug in the plugin, sending to {target.address}")


class StallOutput(Output):
    '''Opens a real connection to the target (host:port) and waits for an answer that never
    comes; closes it when the send is abandoned.'''

    name = "stall"
    formats = ("text",)

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        host, port = target.address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            await reader.read(1)
            return Receipt(status="never")
        finally:
            writer.close()


class LockedOutput(Output):
    '''Fails as an output does when the operator's credentials are refused.'''

    name = "locked"
    formats = ("text",)

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        raise ConfigError("BRIEFING_LOCKED_TOKEN was refused by the service")
"""


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Three outputs installed through the ``briefing.outputs`` entry points, as a third-party
    package would be."""
    (tmp_path / "test_plugins.py").write_text(PLUGINS, encoding="utf-8")
    dist = tmp_path / "test_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: test-plugins\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[briefing.outputs]\nboom = test_plugins:BoomOutput\nstall = test_plugins:StallOutput\n"
        "locked = test_plugins:LockedOutput\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    output_classes.cache_clear()
    yield
    monkeypatch.delitem(sys.modules, "test_plugins", raising=False)
    output_classes.cache_clear()


class SilentServer:
    """A TCP server that accepts connections and never answers; counts the open ones."""

    def __init__(self) -> None:
        self.open = 0
        self.accepted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.accepted += 1
        try:
            await reader.read()  # until the client closes
        finally:
            self.open -= 1
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


async def test_an_output_that_raises_or_hangs_ends_dead_after_the_limit(
    db, ctx, plugins, caplog
) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    silent = SilentServer()
    async with silent as address:
        boom = await add(db, "https://hooks.example/BOOMTOKEN12345678/x", kind="boom")
        stall = await add(db, address, kind="stall")
        ids = await queue(db, [boom.id, stall.id])
        tasks_before = len(asyncio.all_tasks())
        worker = dispatcher(db, ctx, policy=RetryPolicy(attempts=3, base=0.05, cap=0.1))
        worker.send_timeout = 0.3
        rows = {r.subscription_id: r for r in await finish(worker, ids)}
        for _ in range(50):
            if silent.open == 0:
                break
            await asyncio.sleep(0.02)
        assert (
            silent.accepted == 3 and silent.open == 0
        )  # every abandoned send let go of its connection
        assert len(asyncio.all_tasks()) == tasks_before
    assert (rows[boom.id].status, rows[boom.id].attempts) == ("dead", 3)
    assert "unexpected error: RuntimeError: a bug in the plugin" in (
        rows[boom.id].last_answer or ""
    )
    assert (rows[stall.id].status, rows[stall.id].attempts) == ("dead", 3)
    assert "no outcome within 0.3 s" in (rows[stall.id].last_answer or "")
    assert all(r.lease_owner is None for r in rows.values())
    assert "BOOMTOKEN12345678" not in (rows[boom.id].last_answer or "")
    tracebacks = [
        r.getMessage()
        for r in caplog.records
        if rows[boom.id].delivery_id in r.getMessage() and "Traceback" in r.getMessage()
    ]
    assert len(tracebacks) == 3  # logged once per attempt, with the traceback
    assert all("RuntimeError: a bug in the plugin" in t for t in tracebacks)
    assert "BOOMTOKEN12345678" not in caplog.text  # the target's token hidden in the log too


async def test_unexpected_errors_count_toward_pausing_but_operator_errors_do_not(
    db, ctx, plugins
) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    boom = await add(db, "anywhere", kind="boom")
    locked = await add(db, "anywhere", kind="locked")
    once = RetryPolicy(attempts=1)
    for day in range(3):
        ids = await queue(db, [boom.id, locked.id], PERIOD + timedelta(days=day))
        done = {r.subscription_id: r for r in await finish(dispatcher(db, ctx, policy=once), ids)}
        assert done[locked.id].status == "dead" and done[locked.id].last_status == "config"
    assert (await subs.get(db, boom.id)).status == "paused"
    assert (await subs.get(db, locked.id)).status == "active"


async def test_an_operator_error_is_retried(db, ctx, plugins) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    locked = await add(db, "anywhere", kind="locked")
    (row,) = await finish(dispatcher(db, ctx), await queue(db, [locked.id]))
    assert (row.status, row.attempts, row.last_status) == ("dead", QUICK.attempts, "config")
    assert "BRIEFING_LOCKED_TOKEN was refused" in (row.last_answer or "")


async def test_pausing_stops_queued_retries_of_a_manual_send(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    url = receiver.on("/failing", reply(500, "down"))
    sub = await add(db, url, kind="slack")
    now = utc_now()
    (row_id,) = await outbox.insert(
        db, [outbox.new_row(sub.id, now, now=now, trigger=Trigger.MANUAL)]
    )
    slow = RetryPolicy(attempts=8, base=0.3, factor=1.0, cap=0.3)
    worker = dispatcher(db, ctx, policy=slow)
    assert await worker.step() == 1
    await worker.progress(within=5)
    await worker.recorder.flush()
    (row,) = await outbox.listing(db, ids=[row_id])
    assert row.status == "pending" and len(receiver.hits("/failing")) == 1
    await subs.set_status(db, sub.id, subs.PAUSED, now=utc_now(), reason="on holiday")
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(1.5)  # several retry periods
    stop.set()
    await running
    (row,) = await outbox.listing(db, ids=[row_id])
    assert len(receiver.hits("/failing")) == 1
    assert row.status == "skipped" and row.last_answer == "subscription paused: on holiday"
    await subs.set_status(db, sub.id, subs.ACTIVE, now=utc_now())
    assert (await outbox.listing(db, ids=[row_id]))[0].status == "skipped"


async def test_a_paused_subscription_gets_only_forced_sends(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    sub = await add(db, receiver.on("/resting"), kind="slack")
    await subs.set_status(db, sub.id, subs.PAUSED, now=utc_now(), reason="on holiday")
    now = utc_now()
    manual, forced = now, now + timedelta(microseconds=1)
    ids = await outbox.insert(
        db,
        [
            outbox.new_row(sub.id, manual, now=now, trigger=Trigger.MANUAL),
            outbox.new_row(sub.id, forced, now=now, trigger=Trigger.FORCED),
        ],
    )
    rows = {r.trigger: r for r in await finish(dispatcher(db, ctx), ids)}
    assert rows["manual"].status == "skipped" and rows["forced"].status == "delivered"
    assert len(receiver.hits("/resting")) == 1


async def test_check_names_a_template_that_does_not_render(db, ctx, tmp_path) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    override = tmp_path / "templates"
    override.mkdir()
    (override / "digest.chat.j2").write_text("{{ d.story }}\n{{ 1 / 0 }}\n", encoding="utf-8")
    worker = Worker(
        db, ctx, renderer=DigestRenderer(templates_dir=override), clock=utc_now, policy=QUICK
    )
    with pytest.raises(ConfigError, match=rf"{override}/digest\.chat\.j2:2: ZeroDivisionError"):
        await worker.check()
    await worker.check({"generic", "email"})  # they do not use that template


async def test_check_names_a_bad_mail_from(db, tmp_path) -> None:
    context = OutputContext(
        settings=settings_for(tmp_path, mail_from="not an address"),
        policy=TargetPolicy(allow_private=True),
        limits=HttpLimits(connect_timeout=1, total_timeout=1),
    )
    worker = dispatcher(db, context)
    with pytest.raises(ConfigError, match="BRIEFING_MAIL_FROM"):
        await worker.check()
    await worker.check({"slack"})
