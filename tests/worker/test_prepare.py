"""What a claimed row turns into: the reader's window, the digest, the message and its
envelope, or a skip that says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.delivery import Outcome, Status, Trigger
from bot.digest import DigestRenderer, ReaderOptions, Window
from bot.errors import ConfigError
from bot.outputs import HttpLimits, OutputContext, TargetPolicy
from bot.outputs.registry import OutputPool
from bot.store import outbox, states
from bot.store import subscriptions as subs
from bot.worker.prepare import Prepared, Preparer, RenderCache
from tests.conftest import SEED_STATE
from tests.outputs.conftest import settings_for
from tests.store.test_database import new_sub

PERIOD = datetime(2025, 12, 2, 18, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture
async def pool(tmp_path):
    context = OutputContext(
        settings=settings_for(tmp_path),
        policy=TargetPolicy(allow_private=True),
        limits=HttpLimits(),
    )
    yield OutputPool(context)
    await context.aclose()


async def claimed(db, sub_id: int, period: datetime = PERIOD, **row) -> outbox.Claimed:
    await outbox.insert(db, [outbox.new_row(sub_id, period, now=period, **row)])
    (got,) = await outbox.claim(
        db, owner="w", now=period, limit=1, lease=LEASE, max_attempts=8, period=period
    )
    return got


async def prepared(db, pool, row: outbox.Claimed) -> Prepared | outbox.Finished:
    preparer = Preparer(db, pool, DigestRenderer())
    await preparer.load([row])
    return preparer.prepare(row)


async def deliver(db, row: outbox.Claimed, window: tuple[datetime, datetime]) -> None:
    done = Outcome(Status.DELIVERED, "ok", "200", 1)
    await outbox.record(
        db, [outbox.Finished(row.id, row.subscription_id, done, window, "r")], owner="w", now=PERIOD
    )


async def test_a_first_digest_covers_the_day_before_and_the_next_starts_where_it_ended(
    db, pool
) -> None:
    await states.import_state(db, SEED_STATE, now=PERIOD)
    sub = await subs.add(db, new_sub(address="https://example.org/first"), now=PERIOD)
    first = await prepared(db, pool, await claimed(db, sub.id))
    assert isinstance(first, Prepared)
    assert first.window == (PERIOD - timedelta(hours=24), PERIOD)
    assert first.revision == await states.latest_revision(db)
    assert first.message.digest.window_start == PERIOD - timedelta(hours=24)
    later = PERIOD + timedelta(hours=30)
    await deliver(db, await claimed(db, sub.id, PERIOD + timedelta(hours=6)), (PERIOD, later))
    nxt = await prepared(db, pool, await claimed(db, sub.id, PERIOD + timedelta(days=2)))
    assert isinstance(nxt, Prepared)
    assert nxt.window == (later, PERIOD + timedelta(days=2))


async def test_a_retry_keeps_the_window_of_its_first_try(db, pool) -> None:
    await states.import_state(db, SEED_STATE, now=PERIOD)
    sub = await subs.add(db, new_sub(), now=PERIOD)
    row = await claimed(db, sub.id)
    started = PERIOD - timedelta(hours=3)
    retry = Outcome(Status.PENDING, "busy", "503", 0, retry_at=PERIOD)
    await outbox.record(
        db, [outbox.Finished(row.id, sub.id, retry, (started, PERIOD), "r")], owner="w", now=PERIOD
    )
    other = await claimed(db, sub.id, PERIOD - timedelta(hours=1))
    await deliver(db, other, (PERIOD - timedelta(days=3), PERIOD - timedelta(hours=1)))
    (again,) = await outbox.claim(
        db, owner="w", now=PERIOD, limit=1, lease=LEASE, max_attempts=8, period=PERIOD
    )
    ready = await prepared(db, pool, again)
    assert isinstance(ready, Prepared) and ready.window == (started, PERIOD)


async def test_a_period_before_the_last_delivered_window_gets_an_empty_window(db, pool) -> None:
    await states.import_state(db, SEED_STATE, now=PERIOD)
    sub = await subs.add(db, new_sub(), now=PERIOD)
    later = await claimed(db, sub.id, PERIOD + timedelta(hours=2))
    await deliver(db, later, (PERIOD - timedelta(days=1), PERIOD + timedelta(hours=2)))
    ready = await prepared(db, pool, await claimed(db, sub.id, PERIOD))
    assert isinstance(ready, Prepared) and ready.window == (PERIOD, PERIOD)


async def test_the_envelope_and_target_are_the_readers(db, pool) -> None:
    await states.import_state(db, SEED_STATE, now=PERIOD)
    sub = await subs.add(
        db, new_sub(address="https://example.org/mine", secrets=("whsec_a", "whsec_b")), now=PERIOD
    )
    row = await claimed(db, sub.id)
    ready = await prepared(db, pool, row)
    assert isinstance(ready, Prepared)
    assert (ready.target.kind, ready.target.address, ready.target.secrets) == (
        "generic", "https://example.org/mine", ("whsec_a", "whsec_b"),
    )  # fmt: skip
    envelope = ready.envelope
    assert (envelope.delivery_id, envelope.first_part) == (row.delivery_id, 0)
    assert envelope.unsubscribe_token == sub.unsubscribe_token
    assert envelope.subscribed_at == sub.created_at
    assert ready.output.name == "generic"
    assert set(ready.message.bodies) == set(type(ready.output).formats)


async def test_a_retry_resumes_after_the_parts_already_sent(db, pool) -> None:
    await states.import_state(db, SEED_STATE, now=PERIOD)
    sub = await subs.add(db, new_sub(), now=PERIOD)
    row = await claimed(db, sub.id)
    partly = Outcome(Status.PENDING, "busy", "503", 2, retry_at=PERIOD)
    await outbox.record(db, [outbox.Finished(row.id, sub.id, partly)], owner="w", now=PERIOD)
    (again,) = await outbox.claim(db, owner="w", now=PERIOD, limit=1, lease=LEASE, max_attempts=8)
    ready = await prepared(db, pool, again)
    assert isinstance(ready, Prepared) and ready.envelope.first_part == 2


@pytest.mark.parametrize(
    ("status", "reason", "answer"),
    [
        (subs.PAUSED, "on holiday", "subscription paused: on holiday"),
        (subs.PAUSED, None, "subscription paused: no reason given"),
        (subs.REMOVED, "unsubscribed", "subscription removed: unsubscribed"),
    ],
)
async def test_paused_and_removed_subscriptions_are_skipped_saying_why(
    db, pool, status, reason, answer
) -> None:
    await states.import_state(db, SEED_STATE, now=PERIOD)
    sub = await subs.add(db, new_sub(), now=PERIOD)
    row = await claimed(db, sub.id, trigger=Trigger.MANUAL)
    await subs.set_status(db, sub.id, subs.ACTIVE, now=PERIOD)
    async with db.engine.begin() as conn:  # a pause that lands after the claim
        from bot.store.tables import subscriptions

        await conn.execute(
            subscriptions.update()
            .where(subscriptions.c.id == sub.id)
            .values(status=status, paused_reason=reason)
        )
    skip = await prepared(db, pool, row)
    assert isinstance(skip, outbox.Finished)
    assert (skip.row_id, skip.subscription_id) == (row.id, sub.id)
    assert (skip.outcome.status, skip.outcome.answer) == (Status.SKIPPED, answer)


async def test_a_forced_send_reaches_a_paused_subscription(db, pool) -> None:
    await states.import_state(db, SEED_STATE, now=PERIOD)
    sub = await subs.add(db, new_sub(), now=PERIOD)
    await subs.set_status(db, sub.id, subs.PAUSED, now=PERIOD, reason="on holiday")
    (row_id,) = await outbox.queue_manual(db, now=PERIOD, subscription_ids=[sub.id], force=True)
    (row,) = await outbox.claim(db, owner="w", now=PERIOD, limit=1, lease=LEASE, max_attempts=8)
    assert row.id == row_id and row.trigger == Trigger.FORCED
    assert isinstance(await prepared(db, pool, row), Prepared)


async def test_no_state_is_the_operators_error(db, pool) -> None:
    sub = await subs.add(db, new_sub(), now=PERIOD)
    row = await claimed(db, sub.id)
    preparer = Preparer(db, pool, DigestRenderer())
    await preparer.load([row])
    with pytest.raises(ConfigError, match="no briefing state imported yet"):
        preparer.prepare(row)


async def test_skip_empty_skips_a_quiet_window_and_sends_a_busy_one(db, pool) -> None:
    await states.import_state(db, SEED_STATE, now=PERIOD)
    sub = await subs.add(db, new_sub(skip_empty=True), now=PERIOD)
    revision = await states.latest_revision(db)
    quiet = await claimed(db, sub.id, datetime(2027, 1, 1, tzinfo=UTC))
    skip = await prepared(db, pool, quiet)
    assert isinstance(skip, outbox.Finished)
    assert (skip.outcome.status, skip.outcome.answer) == (Status.SKIPPED, "no news (skip-empty)")
    assert skip.window == (quiet.period - timedelta(hours=24), quiet.period)
    assert skip.revision == revision
    busy = await claimed(db, sub.id, datetime(2025, 12, 3, tzinfo=UTC))
    assert isinstance(await prepared(db, pool, busy), Prepared)


def test_renders_are_shared_and_the_cache_is_bounded(seed_state) -> None:
    cache = RenderCache(DigestRenderer(), size=2)
    from bot.outputs.webhooks import GenericWebhookOutput

    window = Window.ending(PERIOD)
    en, fr, de_tz = (
        ReaderOptions(locale="en"), ReaderOptions(locale="fr"),
        ReaderOptions(locale="en", timezone="Europe/Berlin"),
    )  # fmt: skip
    first = cache.message(seed_state, en, window, GenericWebhookOutput)
    assert cache.message(seed_state, en, window, GenericWebhookOutput) is first
    assert cache.renders == 1
    french = cache.message(seed_state, fr, window, GenericWebhookOutput)
    assert french.digest.locale == "fr" and cache.renders == 2
    cache.message(seed_state, en, window, GenericWebhookOutput)  # en is the most recent now
    cache.message(seed_state, de_tz, window, GenericWebhookOutput)  # evicts fr, the oldest
    assert cache.renders == 3
    cache.message(seed_state, en, window, GenericWebhookOutput)
    assert cache.renders == 3
    cache.message(seed_state, fr, window, GenericWebhookOutput)
    assert cache.renders == 4
    other_window = Window.ending(PERIOD, since=PERIOD - timedelta(hours=1))
    assert cache.message(seed_state, en, other_window, GenericWebhookOutput).digest != first.digest
