"""The outbox as workers and readers of the delivery log see it: which rows a claim takes
and when, what recording an outcome leaves in the log, the listing filters, the ids of
manual sends, and claimers racing each other on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bot.delivery import Outcome, Status, Trigger
from bot.store import outbox
from bot.store import subscriptions as subs
from tests.dbs import open_db
from tests.store.test_database import new_sub

NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def claim(db, owner: str = "w", *, now: datetime = NOW, limit: int = 100, **kwargs):
    kwargs.setdefault("max_attempts", 8)
    return await outbox.claim(db, owner=owner, now=now, limit=limit, lease=LEASE, **kwargs)


async def one(db, row_id: int) -> outbox.Delivery:
    (row,) = await outbox.listing(db, ids=[row_id])
    return row


async def queued(db, periods, *, sub_id: int | None = None, now: datetime = NOW) -> list[int]:
    if sub_id is None:
        sub_id = (await subs.add(db, new_sub(), now=NOW)).id
    return await outbox.insert(db, [outbox.new_row(sub_id, p, now=now) for p in periods])


# ---------------------------------------------------------------- ids


def test_delivery_ids_are_stable_and_manual_ones_carry_the_microseconds() -> None:
    period = datetime(2026, 1, 5, 7, 0, 5, 42, tzinfo=UTC)
    assert outbox.delivery_id(7, period, trigger=Trigger.SCHEDULED) == "dlv_7_20260105T070005Z"
    assert outbox.delivery_id(7, period, trigger=Trigger.CATCH_UP) == "dlv_7_20260105T070005Z"
    manual = "dlv_7_20260105T070005.000042Z_manual"
    assert outbox.delivery_id(7, period, trigger=Trigger.MANUAL) == manual
    assert outbox.delivery_id(7, period, trigger=Trigger.FORCED) == manual


async def test_manual_sends_within_one_second_are_each_queued(db) -> None:
    sub = await subs.add(db, new_sub(), now=NOW)
    moments = [NOW.replace(microsecond=m) for m in (1, 2, 999_999)]
    ids = [i for m in moments for i in await outbox.queue_manual(db, now=m)]
    rows = await outbox.listing(db, ids=ids)
    assert len(ids) == 3 and {r.subscription_id for r in rows} == {sub.id}
    assert sorted(r.delivery_id for r in rows) == sorted(
        outbox.delivery_id(sub.id, m, trigger=Trigger.MANUAL) for m in moments
    )
    assert all(r.status == "pending" and r.next_attempt_at == r.period for r in rows)
    assert {(r.attempts, r.first_part, r.parts, r.trigger) for r in rows} == {(0, 0, 0, "manual")}
    assert all(r.created_at == r.updated_at == r.period for r in rows)
    assert len(await claim(db, now=NOW + timedelta(seconds=1))) == 3


async def test_a_manual_send_skips_removed_subscriptions_and_unknown_ids(db) -> None:
    kept = await subs.add(db, new_sub(), now=NOW)
    gone = await subs.add(db, new_sub(), now=NOW)
    await subs.set_status(db, gone.id, subs.REMOVED, now=NOW, reason="removed")
    everyone = await outbox.queue_manual(db, now=NOW)
    assert [r.subscription_id for r in await outbox.listing(db, ids=everyone)] == [kept.id]
    assert await outbox.queue_manual(db, now=NOW, subscription_ids=[9999]) == []


# ---------------------------------------------------------------- claims


async def test_claims_take_the_longest_waiting_first_and_only_what_is_due(db) -> None:
    sub = (await subs.add(db, new_sub(), now=NOW)).id
    rows = [
        outbox.new_row(sub, NOW + timedelta(hours=h), now=NOW + timedelta(seconds=s))
        for h, s in [(1, 50), (2, -5), (3, 0), (4, 10)]
    ]
    late, early, on_time, future = await outbox.insert(db, rows)
    first = await claim(db, "a", limit=1)
    assert [r.id for r in first] == [early]
    second = await claim(db, "a", limit=5)
    assert [r.id for r in second] == [on_time]  # due at exactly now; not the later ones
    assert [r.id for r in await claim(db, "a", now=NOW + timedelta(seconds=10), limit=1)] == [
        future
    ]
    assert [r.id for r in await claim(db, "a", now=NOW + timedelta(seconds=50))] == [late]


async def test_a_claim_holds_the_row_until_its_lease_ends(db) -> None:
    (row_id,) = await queued(db, [NOW])
    (claimed,) = await claim(db, "a", now=NOW)
    assert (claimed.id, claimed.attempts, claimed.first_part, claimed.trigger) == (
        row_id, 1, 0, Trigger.SCHEDULED,
    )  # fmt: skip
    row = await one(db, row_id)
    assert (row.status, row.lease_owner, row.lease_until) == ("sending", "a", NOW + LEASE)
    assert await claim(db, "b", now=NOW + LEASE) == []  # still held at its last moment
    (again,) = await claim(db, "b", now=NOW + LEASE + timedelta(microseconds=1))
    assert again.attempts == 2
    assert (await one(db, row_id)).lease_owner == "b"


async def test_claims_take_only_rows_of_the_period_asked_for(db) -> None:
    sub = (await subs.add(db, new_sub(), now=NOW)).id
    periods = [NOW - timedelta(hours=1), NOW, NOW + timedelta(seconds=1)]
    ids = await queued(db, periods, sub_id=sub)
    other = await queued(db, [NOW])
    got = await claim(db, period=NOW)
    assert sorted(r.id for r in got) == sorted([ids[1], *other])
    assert all(r.period == NOW for r in got)
    assert await claim(db, period=NOW + timedelta(days=1)) == []


async def test_a_row_given_up_on_is_recorded_as_dead_with_the_reason(db) -> None:
    (row_id,) = await queued(db, [NOW])
    await claim(db, "a", max_attempts=1)
    later = NOW + LEASE * 2
    assert await claim(db, "b", now=later, max_attempts=1) == []
    row = await one(db, row_id)
    assert (row.status, row.last_status, row.lease_until, row.updated_at) == (
        "dead", "error", None, later,
    )  # fmt: skip
    assert row.last_answer == (
        "given up: the worker sending it stopped 1 times before recording an outcome"
    )
    # a row with attempts left, lapsed at the same time, is taken again
    (second,) = await queued(db, [NOW + timedelta(hours=1)])
    await claim(db, "a", max_attempts=2)
    (taken,) = await claim(db, "b", now=later, max_attempts=2)
    assert taken.id == second and (await one(db, second)).status == "sending"


async def test_a_pending_retry_is_taken_even_by_a_worker_allowing_fewer_attempts(db) -> None:
    (row_id,) = await queued(db, [NOW])
    (row,) = await claim(db, "a", max_attempts=8)
    retry = Outcome(Status.PENDING, "busy", "503", 0, retry_at=NOW)
    await outbox.record(
        db, [outbox.Finished(row_id, row.subscription_id, retry)], owner="a", now=NOW
    )
    (again,) = await claim(db, "b", max_attempts=1)  # its next failure will be its last
    assert (again.id, again.attempts) == (row_id, 2)


async def test_renewing_keeps_only_ones_own_rows(db) -> None:
    a_id, b_id = await queued(db, [NOW, NOW + timedelta(seconds=1)])
    await claim(db, "a", limit=1)
    await claim(db, "b", limit=1)
    until = NOW + timedelta(minutes=10)
    await outbox.renew(db, [a_id, b_id], owner="a", until=until)
    assert (await one(db, a_id)).lease_until == until
    assert (await one(db, b_id)).lease_until == NOW + LEASE
    await outbox.renew(db, [], owner="a", until=until)
    taken = await claim(db, "c", now=NOW + LEASE * 2)
    assert [r.id for r in taken] == [b_id]  # b's lapsed row goes to c; a's renewed one not
    assert (await one(db, a_id)).lease_owner == "a"
    assert (await one(db, b_id)).lease_owner == "c"


async def test_released_rows_go_back_as_if_untried(db) -> None:
    mine, theirs = await queued(db, [NOW, NOW + timedelta(seconds=1)])
    await claim(db, "a", limit=1)
    await claim(db, "b", limit=1)
    later = NOW + timedelta(seconds=5)
    await outbox.release(db, [mine, theirs], owner="a", now=later)
    row = await one(db, mine)
    assert (row.status, row.attempts, row.lease_owner, row.lease_until) == (
        "pending",
        0,
        None,
        None,
    )
    assert (row.next_attempt_at, row.updated_at) == (later, later)
    assert (await one(db, theirs)).lease_owner == "b"
    await outbox.release(db, [], owner="b", now=later)
    assert (await one(db, theirs)).status == "sending"


# ---------------------------------------------------------------- recording


async def test_recorded_outcomes_fill_the_delivery_log(db) -> None:
    sub = (await subs.add(db, new_sub(), now=NOW)).id
    ids = await queued(db, [NOW + timedelta(seconds=s) for s in range(4)], sub_id=sub)
    await claim(db, "w")
    window = (NOW - timedelta(days=1), NOW)
    retry = NOW + timedelta(minutes=3)
    done = NOW + timedelta(seconds=9)
    await outbox.record(
        db,
        [
            outbox.Finished(ids[0], sub, Outcome(Status.DELIVERED, "ok", "200", 3), window, "r1"),
            outbox.Finished(
                ids[1], sub, Outcome(Status.PENDING, "busy", "503", 2, retry_at=retry), window, "r1"
            ),
            outbox.Finished(ids[2], sub, Outcome(Status.DEAD, "no", "400", 1)),
            outbox.Finished(ids[3], sub, Outcome(Status.SKIPPED, "no news"), window, "r2"),
        ],
        owner="w",
        now=done,
    )
    delivered, pending, dead, skipped = [await one(db, i) for i in ids]
    for row in (delivered, pending, dead, skipped):
        assert (row.lease_owner, row.lease_until, row.sent_by, row.updated_at) == (
            None, None, "w", done,
        )  # fmt: skip
    assert (delivered.status, delivered.last_status, delivered.last_answer) == (
        "delivered", "200", "ok",
    )  # fmt: skip
    assert (delivered.parts, delivered.delivered_at, delivered.state_revision) == (3, done, "r1")
    assert (delivered.window_start, delivered.window_end) == window
    assert (pending.status, pending.next_attempt_at, pending.first_part, pending.parts) == (
        "pending", retry, 2, 0,
    )  # fmt: skip
    assert pending.delivered_at is None and pending.last_answer == "busy"
    assert (dead.status, dead.first_part, dead.window_start, dead.state_revision) == (
        "dead", 1, None, None,
    )  # fmt: skip
    assert (skipped.status, skipped.last_answer, skipped.state_revision) == (
        "skipped", "no news", "r2",
    )  # fmt: skip
    assert (skipped.first_part, skipped.parts, skipped.delivered_at) == (0, 0, None)
    # the retry comes back when due, resuming where it stopped
    (again,) = await claim(db, "w", now=retry)
    assert (again.id, again.first_part, again.window_start, again.attempts) == (
        ids[1], 2, window[0], 2,
    )  # fmt: skip
    await outbox.record(
        db, [outbox.Finished(ids[1], sub, Outcome(Status.DELIVERED, "ok", "200", 4))],
        owner="w", now=retry,
    )  # fmt: skip
    again_row = await one(db, ids[1])
    assert (again_row.window_start, again_row.state_revision) == (window[0], "r1")  # kept


async def test_outcomes_alike_and_unlike_in_one_batch(db) -> None:
    subs_ids = [(await subs.add(db, new_sub(), now=NOW)).id for _ in range(3)]
    ids = await outbox.insert(db, [outbox.new_row(s, NOW, now=NOW) for s in subs_ids])
    await claim(db)
    w1, w2 = (NOW - timedelta(days=1), NOW), (NOW - timedelta(days=2), NOW)
    await outbox.record(
        db,
        [
            outbox.Finished(ids[0], subs_ids[0], Outcome(Status.DELIVERED, "a", "200", 1), w1, "r"),
            outbox.Finished(ids[1], subs_ids[1], Outcome(Status.DELIVERED, "a", "200", 1), w2, "r"),
            outbox.Finished(ids[2], subs_ids[2], Outcome(Status.DELIVERED, "b", "202", 2), w1, "s"),
        ],
        owner="w",
        now=NOW,
    )
    rows = [await one(db, i) for i in ids]
    assert [
        (r.window_start, r.last_answer, r.last_status, r.parts, r.state_revision) for r in rows
    ] == [
        (w1[0], "a", "200", 1, "r"),
        (w2[0], "a", "200", 1, "r"),
        (w1[0], "b", "202", 2, "s"),
    ]
    await outbox.record(db, [], owner="w", now=NOW)


async def test_a_long_answer_is_kept_to_its_first_2000_characters(db) -> None:
    (row_id,) = await queued(db, [NOW])
    (claimed,) = await claim(db)
    answer = "x" * 1999 + "yz" + "!" * 3000
    await outbox.record(
        db,
        [outbox.Finished(row_id, claimed.subscription_id, Outcome(Status.DEAD, answer, "400"))],
        owner="w",
        now=NOW,
    )
    assert (await one(db, row_id)).last_answer == "x" * 1999 + "y"


async def test_a_large_fan_out_is_recorded_whole(db) -> None:
    sub_ids = [s.id for s in [await subs.add(db, new_sub(), now=NOW) for _ in range(3)]]
    rows = [
        outbox.new_row(s, NOW + timedelta(seconds=k), now=NOW) for s in sub_ids for k in range(401)
    ]
    await outbox.insert(db, rows)
    claimed = await claim(db, limit=2000)
    assert len(claimed) == 1203
    ok = Outcome(Status.DELIVERED, "ok", "200", 1)
    await outbox.record(
        db, [outbox.Finished(r.id, r.subscription_id, ok) for r in claimed], owner="w", now=NOW
    )
    assert await outbox.counts(db) == {Status.DELIVERED: 1203}


# ---------------------------------------------------------------- the log


async def test_new_rows_that_are_not_pending_are_never_claimed(db) -> None:
    sub = (await subs.add(db, new_sub(), now=NOW)).id
    skipped = outbox.new_row(
        sub, NOW, now=NOW, trigger=Trigger.CATCH_UP, status=Status.SKIPPED, note="too old"
    )
    (row_id,) = await outbox.insert(db, [skipped])
    assert await claim(db, now=NOW + timedelta(days=1)) == []
    row = await one(db, row_id)
    assert (row.status, row.trigger, row.last_answer, row.next_attempt_at) == (
        "skipped", "catch-up", "too old", None,
    )  # fmt: skip
    assert (row.attempts, row.parts, row.first_part, row.created_at) == (0, 0, 0, NOW)
    assert await outbox.insert(db, []) == []


async def test_listing_filters_and_order(db) -> None:
    a = (await subs.add(db, new_sub(), now=NOW)).id
    b = (await subs.add(db, new_sub(), now=NOW)).id
    p1, p2, p3 = NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    ids = await outbox.insert(
        db, [outbox.new_row(s, p, now=NOW) for s in (a, b) for p in (p1, p2, p3)]
    )
    a1, a2, a3, b1, b2, b3 = ids
    (claimed,) = await claim(db, limit=1, period=p2)  # a2 or b2: lowest id first on ties
    done = Outcome(Status.DELIVERED, "ok", "200", 1)
    await outbox.record(db, [outbox.Finished(claimed.id, claimed.subscription_id, done)],
                        owner="w", now=NOW)  # fmt: skip

    async def listed(**kwargs) -> list[int]:
        return [r.id for r in await outbox.listing(db, **kwargs)]

    assert await listed() == [b3, a3, b2, a2, b1, a1]  # newest period first, then newest row
    finished = [r.status.final for r in await outbox.listing(db, ids=[claimed.id, a1])]
    assert finished == [True, False]
    assert await listed(subscription_id=a) == [a3, a2, a1]
    assert await listed(status="delivered") == [claimed.id]
    assert set(await listed(statuses=["pending", "sending"])) == set(ids) - {claimed.id}
    assert await listed(statuses=[]) == []
    assert await listed(ids=[a1, b3]) == [b3, a1]
    assert await listed(ids=[]) == []
    assert await listed(period=p1) == [b1, a1]
    assert await listed(subscription_id=b, period=p3) == [b3]
    assert await listed(limit=2) == [b3, a3]
    assert await outbox.counts(db) == {Status.PENDING: 5, Status.DELIVERED: 1}
    assert await outbox.counts(db, period=p2) == {Status.PENDING: 1, Status.DELIVERED: 1}
    assert await outbox.counts(db, period=p1 - timedelta(days=1)) == {}


async def test_the_last_window_is_the_latest_one_delivered(db) -> None:
    a = (await subs.add(db, new_sub(), now=NOW)).id
    b = (await subs.add(db, new_sub(), now=NOW)).id
    never = (await subs.add(db, new_sub(), now=NOW)).id
    days = [NOW + timedelta(days=d) for d in range(3)]
    ids = await outbox.insert(
        db, [outbox.new_row(s, d, now=NOW) for s in (a, b, never) for d in days]
    )
    await claim(db, now=days[-1])
    by = {(r.subscription_id, r.period): r.id for r in await outbox.listing(db, ids=ids)}

    def done(sub: int, day: datetime, status: Status) -> outbox.Finished:
        window = (day - timedelta(days=1), day)
        return outbox.Finished(by[sub, day], sub, Outcome(status, "", "200", 1), window, "r")

    await outbox.record(
        db,
        [
            done(a, days[0], Status.DELIVERED), done(a, days[1], Status.DELIVERED),
            done(a, days[2], Status.DEAD), done(b, days[0], Status.DELIVERED),
            done(b, days[1], Status.SKIPPED), done(never, days[0], Status.DEAD),
        ],
        owner="w",
        now=NOW,
    )  # fmt: skip
    assert await outbox.last_windows(db, [a, b, never, a]) == {a: days[1], b: days[0]}
    assert await outbox.last_windows(db, []) == {}


async def test_pruning_stops_at_the_cut_off_and_looks_at_each_subscription_alone(db) -> None:
    a = (await subs.add(db, new_sub(), now=NOW)).id
    b = (await subs.add(db, new_sub(), now=NOW)).id
    old, cut, young = NOW - timedelta(days=20), NOW - timedelta(days=10), NOW - timedelta(days=1)
    rows = [
        outbox.new_row(a, old, now=NOW), outbox.new_row(a, cut, now=NOW),
        outbox.new_row(b, young, now=NOW),
        outbox.new_row(b, old, now=NOW, trigger=Trigger.CATCH_UP, status=Status.SKIPPED),
    ]  # fmt: skip
    a_old, a_cut, b_young, b_old = await outbox.insert(db, rows)
    await claim(db, now=NOW)
    ok = Outcome(Status.DELIVERED, "ok", "200", 1)
    await outbox.record(
        db,
        [outbox.Finished(i, s, ok) for i, s in [(a_old, a), (a_cut, a), (b_young, b)]],
        owner="w",
        now=NOW,
    )
    # a's old row is superseded by a's later one; b's rows never supersede a's
    assert await outbox.prune(db, before=cut) == 2
    left = {r.id for r in await outbox.listing(db)}
    assert left == {a_cut, b_young}


# ---------------------------------------------------------------- contention


@pytest.fixture
async def pg(tmp_path):
    async with open_db("postgresql", tmp_path) as database:
        yield database


async def test_a_claim_skips_rows_another_claimer_holds_locked(pg) -> None:
    ids = await queued(pg, [NOW + timedelta(seconds=s) for s in range(6)])
    async with pg.engine.connect() as other:
        held = await other.execute(
            text("SELECT id FROM deliveries ORDER BY next_attempt_at LIMIT 3 FOR UPDATE")
        )
        locked = [row[0] for row in held]
        async with asyncio.timeout(20):  # a claim that waited for the lock would hang here
            got = await claim(pg, "b", now=NOW + timedelta(minutes=1))
        await other.rollback()
    assert sorted(r.id for r in got) == sorted(set(ids) - set(locked))


async def test_two_claimers_racing_never_take_the_same_row(pg) -> None:
    sub = (await subs.add(pg, new_sub(), now=NOW)).id
    ids = await outbox.insert(
        pg, [outbox.new_row(sub, NOW + timedelta(seconds=s), now=NOW) for s in range(120)]
    )
    taken: dict[str, list[int]] = {"a": [], "b": []}

    async def claimer(owner: str) -> None:
        while rows := await claim(pg, owner, limit=7):
            taken[owner] += [r.id for r in rows]
            await asyncio.sleep(0)

    async with asyncio.timeout(60):
        await asyncio.gather(claimer("a"), claimer("b"))
    assert sorted(taken["a"] + taken["b"]) == sorted(ids)  # each row exactly once
    assert taken["a"] and taken["b"]
    rows = await outbox.listing(pg, limit=200)
    assert {(r.status, r.attempts) for r in rows} == {("sending", 1)}
    assert {r.id: r.lease_owner for r in rows} == {
        i: owner for owner, got in taken.items() for i in got
    }
