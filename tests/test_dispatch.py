from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from bot.delivery import RetryPolicy
from bot.digest import DigestRenderer
from bot.dispatch import Dispatcher
from bot.outputs import HttpLimits, OutputContext, TargetPolicy
from bot.outputs.webhooks import new_secret
from bot.store import outbox, states
from bot.store import subscriptions as subs
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
        limits=HttpLimits(connect_timeout=1, total_timeout=1),
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


def dispatcher(db, ctx, **kwargs) -> Dispatcher:
    kwargs.setdefault("policy", QUICK)
    return Dispatcher(db, ctx, renderer=DigestRenderer(), clock=utc_now, **kwargs)


async def finish(
    d: Dispatcher, ids: list[int], period: datetime | None = None
) -> list[outbox.Delivery]:
    async with asyncio.timeout(30):
        await d.until_done(ids, period=period, horizon=60)
    await d.flush()
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
    assert d.cache.renders == 1
    hits = receiver.hits("/fan")
    assert sorted(h.headers["webhook-id"] for h in hits) == sorted(r.delivery_key for r in done)
    by_key = {s.id: s for s in created}
    for hit, row in zip(
        sorted(hits, key=lambda h: h.headers["webhook-id"]),
        sorted(done, key=lambda r: r.delivery_key),
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
        db, owner="crashed", now=utc_now(), limit=10, lease=timedelta(seconds=1)
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
    await asyncio.sleep(0.5)
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
        db, owner="briefing-run", now=utc_now(), limit=1, lease=timedelta(minutes=5)
    )
    waiting = asyncio.create_task(finish(dispatcher(db, ctx), ids, PERIOD))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    await outbox.record(
        db, [{"row_id": taken.id, "status": "delivered", "lease_owner": None}], owner="briefing-run"
    )
    (row,) = await asyncio.wait_for(waiting, timeout=10)
    assert row.status == "delivered" and receiver.hits("/elsewhere") == []
