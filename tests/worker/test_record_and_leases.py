"""Recording outcomes (batches that survive a database outage, the pause rule) and
holding leases (renewed on the worker's clock, given back at shutdown)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bot.delivery import Outcome, Status
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database
from bot.worker.leases import Leases
from bot.worker.record import Recorder
from tests.store.test_database import new_sub

NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def away():
    """A database that is not there (nothing listens on the port)."""
    database = Database(create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:9/none"))
    yield database
    await database.close()


async def rows_for(db, count: int, *, sub_id: int | None = None) -> list[outbox.Claimed]:
    if sub_id is None:
        sub_id = (await subs.add(db, new_sub(), now=NOW)).id
    periods = [NOW - timedelta(days=d) for d in range(count)]
    await outbox.insert(db, [outbox.new_row(sub_id, p, now=NOW) for p in periods])
    return await outbox.claim(db, owner="w", now=NOW, limit=count, lease=LEASE, max_attempts=8)


def finished(row: outbox.Claimed, status: Status, **outcome) -> outbox.Finished:
    return outbox.Finished(row.id, row.subscription_id, Outcome(status, **outcome))


async def test_outcomes_are_written_in_batches_and_reported(db, caplog) -> None:
    rows = await rows_for(db, 3)
    seen: list[list[int]] = []
    recorder = Recorder(db, owner="w", clock=lambda: NOW)
    recorder.listeners.append(lambda batch: seen.append([f.row_id for f in batch]))
    assert recorder.add(finished(rows[0], Status.DELIVERED, code="200")) == 1
    assert recorder.add(finished(rows[1], Status.DELIVERED, code="200")) == 2
    assert recorder.add(finished(rows[2], Status.SKIPPED)) == 3
    assert {r.status for r in await outbox.listing(db)} == {"sending"}  # not before a flush
    with caplog.at_level(logging.INFO, logger="briefing.worker"):
        await recorder.flush()
        await recorder.flush()  # nothing left: writes and reports nothing
    assert seen == [[r.id for r in rows]]
    assert [(r.name, r.message) for r in caplog.records] == [
        ("briefing.worker", "recorded 2 delivered, 1 skipped")
    ]
    assert sorted(r.status for r in await outbox.listing(db)) == [
        "delivered", "delivered", "skipped",
    ]  # fmt: skip
    assert recorder.add(finished(rows[0], Status.DELIVERED)) == 1


async def test_outcomes_survive_a_database_outage(db, away) -> None:
    rows = await rows_for(db, 2)
    recorder = Recorder(away, owner="w", clock=lambda: NOW)
    recorder.add(finished(rows[0], Status.DELIVERED, code="200"))
    with pytest.raises(OSError):
        await recorder.flush()
    recorder.add(finished(rows[1], Status.DEAD, code="400"))
    recorder.db = db  # the database is back
    await recorder.flush()
    assert {r.id: r.status for r in await outbox.listing(db)} == {
        rows[0].id: "delivered", rows[1].id: "dead",
    }  # fmt: skip


async def test_a_gone_target_pauses_its_subscription_at_once(db, caplog) -> None:
    rows = await rows_for(db, 1)
    paused: list[int] = []
    recorder = Recorder(db, owner="w", clock=lambda: NOW, on_paused=paused.append)
    why = "receiver answered 410: the target is gone"
    recorder.add(finished(rows[0], Status.DEAD, code="410", pause=why))
    with caplog.at_level(logging.WARNING, logger="briefing.worker"):
        await recorder.flush()
    said = [r.getMessage() for r in caplog.records if r.name == "briefing.worker"]
    assert said == [f"pausing subscription {rows[0].subscription_id}: {why}"]
    sub = await subs.get(db, rows[0].subscription_id)
    assert (sub.status, sub.paused_reason) == ("paused", why)
    assert paused == [sub.id]


async def test_three_dead_deliveries_in_a_row_pause_and_two_do_not(db) -> None:
    three = await rows_for(db, 3)
    two = await rows_for(db, 2)
    paused: list[int] = []
    recorder = Recorder(db, owner="w", clock=lambda: NOW, on_paused=paused.append)
    for row in [*three, *two]:
        recorder.add(finished(row, Status.DEAD, code="500"))
    await recorder.flush()
    failing = await subs.get(db, three[0].subscription_id)
    assert failing.status == "paused" and "last 3 deliveries failed" in (
        failing.paused_reason or ""
    )
    assert (await subs.get(db, two[0].subscription_id)).status == "active"
    assert paused == [failing.id]


async def test_delivered_outcomes_never_pause(db) -> None:
    rows = await rows_for(db, 3)
    recorder = Recorder(db, owner="w", clock=lambda: NOW)
    for row in rows:
        recorder.add(finished(row, Status.DELIVERED, code="200"))
    await recorder.flush()
    assert (await subs.get(db, rows[0].subscription_id)).status == "active"


async def test_leases_are_renewed_on_the_workers_clock_while_in_hand(db, caplog) -> None:
    clock = Clock()
    mine = Leases(db, owner="a", clock=clock, lease=timedelta(seconds=0.03), max_attempts=8)
    other = Leases(db, owner="b", clock=clock, lease=LEASE, max_attempts=8)
    sub = (await subs.add(db, new_sub(), now=NOW)).id
    await outbox.insert(db, [outbox.new_row(sub, NOW, now=NOW)])
    (row,) = await mine.claim(5)
    clock.now = NOW + timedelta(hours=1)  # long past the first lease
    stop = asyncio.Event()
    keeper = asyncio.create_task(mine.keep(lambda: [row.id], stop))
    async with asyncio.timeout(20):
        while (await outbox.listing(db, ids=[row.id]))[0].lease_until <= clock.now:
            await asyncio.sleep(0.01)
    assert await other.claim(5) == []  # renewed: still a's
    stop.set()
    async with asyncio.timeout(20):
        await keeper
    await mine.give_back([row.id])
    (back,) = await outbox.listing(db, ids=[row.id])
    assert (back.status, back.attempts, back.next_attempt_at) == ("pending", 0, clock.now)
    (taken,) = await other.claim(5, period=NOW)
    assert taken.id == row.id


async def test_lease_keeping_and_giving_back_ride_out_a_database_outage(away, caplog) -> None:
    leases = Leases(away, owner="a", clock=Clock(), lease=timedelta(seconds=0.03), max_attempts=8)
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="briefing.worker"):
        keeper = asyncio.create_task(leases.keep(lambda: [1], stop))
        async with asyncio.timeout(20):
            while len(caplog.records) < 2:  # it keeps trying
                await asyncio.sleep(0.01)
        stop.set()
        await keeper
    assert caplog.records[0].message.startswith("cannot renew leases: ")
    assert caplog.records[0].name == "briefing.worker"  # where operators look for it
    await leases.give_back([1])  # at shutdown: nothing to do but go


async def test_a_send_longer_than_the_lease_keeps_its_row(db) -> None:
    """Renewal comes well before the lease runs out, so no other worker takes the row (and
    sends it a second time) while it is still being sent."""

    def wall() -> datetime:
        return datetime.now(UTC)

    lease = timedelta(seconds=3)
    mine = Leases(db, owner="a", clock=wall, lease=lease, max_attempts=8)
    other = Leases(db, owner="b", clock=wall, lease=lease, max_attempts=8)
    sub = (await subs.add(db, new_sub(), now=NOW)).id
    await outbox.insert(db, [outbox.new_row(sub, NOW, now=NOW)])
    (row,) = await mine.claim(5)
    stop = asyncio.Event()
    keeper = asyncio.create_task(mine.keep(lambda: [row.id], stop))
    try:
        for _ in range(10):  # five seconds: the first lease alone would have run out
            await asyncio.sleep(0.5)
            assert await other.claim(5) == []
    finally:
        stop.set()
        await keeper
    assert (await outbox.listing(db, ids=[row.id]))[0].lease_owner == "a"
