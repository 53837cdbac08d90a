"""A manual send (``briefing send``) waits for its own rows: retries due soon are made in
the command, a retry due later stays queued for ``briefing run``, other rows are left alone,
and the progress counts every row once."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from bot.delivery import RetryPolicy
from bot.store import outbox, states
from bot.worker import send_and_wait
from bot.worker.worker import FLUSH_EVERY
from tests.conftest import SEED_STATE
from tests.receivers import hang, reply
from tests.test_worker import PERIOD, add, dispatcher, queue, utc_now

QUICK = RetryPolicy(attempts=4, base=0.05, cap=0.1)


async def test_retries_due_soon_are_made_and_later_ones_left_queued(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    soon = await add(db, receiver.on("/soon", reply(503), reply(200)))
    later = await add(
        db, receiver.on("/later", reply(429, "", {"Retry-After": "15.9"}), reply(200))
    )
    gone = await add(db, receiver.on("/gone", reply(400, "no such hook")))
    ids = await queue(db, [soon.id, later.id, gone.id])
    counted: list[int] = []
    # the retry comes after a turn or two of the wait, not within the same one
    worker = dispatcher(db, ctx, policy=RetryPolicy(attempts=4, base=1.0, factor=1.0, cap=1.0))
    async with asyncio.timeout(14):  # the default horizon: it does not wait 15.9 s
        await send_and_wait(worker, ids, period=None, progress=counted.append)
    await worker.close()
    rows = {r.subscription_id: r for r in await outbox.listing(db, ids=ids)}
    assert (rows[soon.id].status, rows[soon.id].attempts) == ("delivered", 2)
    assert (rows[gone.id].status, rows[gone.id].attempts) == ("dead", 1)
    assert (rows[later.id].status, rows[later.id].attempts) == ("pending", 1)
    assert rows[later.id].next_attempt_at > utc_now() + timedelta(seconds=10)
    assert len(receiver.hits("/later")) == 1
    assert sum(counted) == 3 and all(n > 0 for n in counted)


async def test_a_manual_send_leaves_rows_of_other_periods_alone(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    sub = await add(db, receiver.on("/mine"))
    other = await add(db, receiver.on("/scheduled"))
    (scheduled,) = await queue(db, [other.id], PERIOD - timedelta(hours=1))
    ids = await queue(db, [sub.id])
    worker = dispatcher(db, ctx, policy=QUICK)
    async with asyncio.timeout(30):
        await send_and_wait(worker, ids, period=PERIOD)
    await worker.close()
    (mine,) = await outbox.listing(db, ids=ids)
    (left,) = await outbox.listing(db, ids=[scheduled])
    assert mine.status == "delivered" and left.status == "pending"
    assert receiver.hits("/scheduled") == []


async def test_a_wait_ends_when_another_worker_finishes_the_rows(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    subs_ = [await add(db, receiver.on(f"/other{n}")) for n in range(2)]
    ids = await queue(db, [s.id for s in subs_])
    taken = await outbox.claim(
        db, owner="elsewhere", now=utc_now(), limit=5, lease=timedelta(minutes=5), max_attempts=8
    )
    worker = dispatcher(db, ctx, policy=QUICK)
    counted: list[int] = []
    waiting = asyncio.create_task(send_and_wait(worker, ids, period=None, progress=counted.append))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    from bot.delivery import Outcome, Status

    await outbox.record(
        db,
        [outbox.Finished(r.id, r.subscription_id, Outcome(Status.DELIVERED, "ok", "200", 1))
         for r in taken],
        owner="elsewhere",
        now=utc_now(),
    )  # fmt: skip
    async with asyncio.timeout(10):
        await waiting
    await worker.close()
    assert sum(counted) == 2
    assert [receiver.hits(f"/other{n}") for n in range(2)] == [[], []]


async def test_the_progress_counts_only_the_sends_own_rows(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    mine = [await add(db, receiver.on(f"/mine{n}")) for n in range(2)]
    other = await add(db, receiver.on("/due-anyway"))
    await queue(db, [other.id], PERIOD - timedelta(hours=1))  # due, and taken on the way
    ids = await queue(db, [s.id for s in mine])
    counted: list[int] = []
    worker = dispatcher(db, ctx, policy=QUICK)
    async with asyncio.timeout(30):
        await send_and_wait(worker, ids, period=None, progress=counted.append)
    await worker.close()
    assert sum(counted) == 2
    assert {r.status for r in await outbox.listing(db, ids=ids)} == {"delivered"}


async def test_outcomes_are_written_together_not_after_each_send(db, ctx, receiver) -> None:
    # 150 sends finishing one by one over about half a second: a write per finished send
    # would be a transaction each; written together every FLUSH_EVERY, far fewer
    await states.import_state(db, SEED_STATE, now=utc_now())
    subs = [await add(db, receiver.on(f"/r{n}", hang(0.003 * n))) for n in range(150)]
    ids = await queue(db, [s.id for s in subs])
    worker = dispatcher(db, ctx, policy=QUICK, concurrency=200)
    writes: list[int] = []
    worker.recorder.listeners.append(lambda batch: writes.append(len(batch)))
    async with asyncio.timeout(60):
        await send_and_wait(worker, ids, period=PERIOD)
    await worker.close()
    rows = await outbox.listing(db, ids=ids, limit=len(ids))
    assert len(rows) == 150 and {r.status for r in rows} == {"delivered"}
    # every attempt's outcome written once (on a busy machine a send may time out and be
    # retried), in a few large writes: a write per send made 106 writes for 150 outcomes
    assert sum(writes) == sum(r.attempts for r in rows), writes
    assert len(writes) * 4 <= sum(writes), writes


async def test_finished_sends_are_written_while_a_slow_one_is_still_out(db, ctx, receiver) -> None:
    # a reader's delivery is on record (and counted) soon after it is made, not when the
    # slowest send of the batch ends: a crash then would send it again
    await states.import_state(db, SEED_STATE, now=utc_now())
    quick = await add(db, receiver.on("/quick"))
    slow = await add(db, receiver.on("/slow", hang(2.0)))
    ids = await queue(db, [quick.id, slow.id])
    worker = dispatcher(db, ctx, policy=QUICK)
    counted: list[int] = []
    waiting = asyncio.create_task(send_and_wait(worker, ids, period=None, progress=counted.append))
    async with asyncio.timeout(1.5):
        while not counted:
            await asyncio.sleep(0.02)
    rows = {r.subscription_id: r.status for r in await outbox.listing(db, ids=ids)}
    assert rows == {quick.id: "delivered", slow.id: "sending"} and counted == [1]
    async with asyncio.timeout(10):
        await waiting
    await worker.close()
    assert counted == [1, 1]


async def test_the_wait_polls_at_its_pace_while_sends_are_out(db, ctx, receiver) -> None:
    # one send taking a second: the wait wakes every FLUSH_EVERY (or when a send ends) to
    # claim and write, not as fast as the database answers
    await states.import_state(db, SEED_STATE, now=utc_now())
    slow = await add(db, receiver.on("/slow", hang(1.0)))
    ids = await queue(db, [slow.id])
    worker = dispatcher(db, ctx, policy=QUICK)
    before, started = db.usage.statements, time.monotonic()
    async with asyncio.timeout(10):
        await send_and_wait(worker, ids, period=None)
    turns = (time.monotonic() - started) / FLUSH_EVERY
    await worker.close()
    assert len(receiver.hits("/slow")) == 1
    # a turn is a claim (up to two statements on PostgreSQL), plus the few of the send
    assert db.usage.statements - before <= 2 * turns + 20, (db.usage.statements - before, turns)


async def test_a_write_refused_while_the_database_is_away_is_made_later(
    db, ctx, receiver, monkeypatch, caplog
) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    subs_ = [await add(db, receiver.on(f"/r{n}")) for n in range(3)]
    ids = await queue(db, [s.id for s in subs_])
    record = outbox.record
    refused: list[int] = []

    async def away_once(*args, **kwargs):
        if not refused:
            refused.append(1)
            raise OSError("connection refused")
        return await record(*args, **kwargs)

    monkeypatch.setattr(outbox, "record", away_once)
    counted: list[int] = []
    worker = dispatcher(db, ctx, policy=QUICK)
    async with asyncio.timeout(30):
        await send_and_wait(worker, ids, period=None, progress=counted.append)
    await worker.close()
    assert refused and sum(counted) == 3
    assert {r.status for r in await outbox.listing(db, ids=ids)} == {"delivered"}
    assert all(len(receiver.hits(f"/r{n}")) == 1 for n in range(3))


async def test_a_lone_retry_due_soon_is_made_before_the_wait_ends(db, ctx, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    soon = await add(db, receiver.on("/soon", reply(503), reply(200)))
    ids = await queue(db, [soon.id])
    worker = dispatcher(db, ctx, policy=RetryPolicy(attempts=4, base=1.0, factor=1.0, cap=1.0))
    async with asyncio.timeout(14):
        await send_and_wait(worker, ids, period=None)
    # a second send on the same worker (as the API's sends share one) leaves nothing behind
    async with asyncio.timeout(14):
        await send_and_wait(
            worker, await queue(db, [soon.id], PERIOD + timedelta(hours=1)), period=None
        )
    await worker.close()
    (row,) = await outbox.listing(db, ids=ids)
    assert (row.status, row.attempts) == ("delivered", 2)
    assert worker.recorder.listeners == []
