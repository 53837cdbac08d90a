from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import ConfigError
from bot.schedule import Scheduler, fire_times, next_fire, schedule_from
from bot.store import outbox
from bot.store import subscriptions as subs


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_seven_in_paris_across_both_dst_changes() -> None:
    spring = fire_times(
        "0 7 * * *", "Europe/Paris", after=utc(2026, 3, 27), until=utc(2026, 3, 31), limit=10
    )
    assert spring == [
        utc(2026, 3, 27, 6),
        utc(2026, 3, 28, 6),
        utc(2026, 3, 29, 5),
        utc(2026, 3, 30, 5),
    ]
    autumn = fire_times(
        "0 7 * * *", "Europe/Paris", after=utc(2026, 10, 23), until=utc(2026, 10, 27), limit=10
    )
    assert autumn == [
        utc(2026, 10, 23, 5),
        utc(2026, 10, 24, 5),
        utc(2026, 10, 25, 6),
        utc(2026, 10, 26, 6),
    ]


def test_wall_times_inside_the_changes_fire_once() -> None:
    # 02:30 happens twice on 2026-10-25 in Paris: one firing, not two
    autumn = fire_times(
        "30 2 * * *", "Europe/Paris", after=utc(2026, 10, 24), until=utc(2026, 10, 26, 12), limit=10
    )
    assert autumn == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # 02:30 does not exist on 2026-03-29: it still fires that day, once
    spring = fire_times(
        "30 2 * * *", "Europe/Paris", after=utc(2026, 3, 28), until=utc(2026, 3, 30, 12), limit=10
    )
    assert [t.date().isoformat() for t in spring] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    hourly = fire_times(
        "0 * * * *",
        "Europe/Paris",
        after=utc(2026, 10, 24, 23),
        until=utc(2026, 10, 25, 3),
        limit=10,
    )
    assert len(hourly) == len(set(hourly)) and all(b > a for a, b in itertools.pairwise(hourly))


@pytest.mark.parametrize(
    ("at", "cron", "expected"),
    [
        ("07:00", None, "0 7 * * *"),
        ("7:05", None, "5 7 * * *"),
        (None, "0 7 * * 1-5", "0 7 * * 1-5"),
        (None, None, "0 7 * * *"),
    ],
)
def test_schedule_options(at, cron, expected) -> None:
    assert schedule_from(at=at, cron=cron) == expected


@pytest.mark.parametrize(
    ("at", "cron", "message"),
    [
        ("25:00", None, "--at '25:00': expected a time of day"),
        (None, "0 7 * *", "expected five fields"),
        (None, "0 99 * * *", "--cron '0 99 \\* \\* \\*'"),
        ("07:00", "0 7 * * *", "not both"),
    ],
)
def test_bad_schedules(at, cron, message) -> None:
    with pytest.raises(ConfigError, match=message):
        schedule_from(at=at, cron=cron)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def subscribe(
    db, clock: Clock, *, cron: str = "0 7 * * *", timezone: str = "Europe/Paris"
) -> subs.Subscription:
    new = subs.NewSubscription(
        name="reader",
        kind="email",
        address="r@example.org",
        secrets=(),
        topics=None,
        locale="fr",
        timezone=timezone,
        cron=cron,
        skip_empty=False,
        next_fire_at=next_fire(cron, timezone, after=clock.now),
    )
    return await subs.add(db, new, now=clock.now)


async def rows(db, sub_id: int) -> list[tuple[datetime, str, str]]:
    found = await outbox.listing(db, subscription_id=sub_id, limit=1000)
    return sorted((r.period, r.status, r.trigger) for r in found)


async def test_a_firing_writes_one_row_and_a_second_writer_is_harmless(db) -> None:
    clock = Clock(utc(2026, 1, 5, 5, 0))
    sub = await subscribe(db, clock)
    one, two = (
        Scheduler(db, catchup=timedelta(hours=6), clock=clock),
        Scheduler(db, catchup=timedelta(hours=6), clock=clock),
    )
    assert await one.tick() == 0
    clock.now = utc(2026, 1, 5, 6, 0, 1)
    # both instances saw the subscription as due before either advanced it
    due = await subs.due(db, now=clock.now)
    written = [
        len(await outbox.insert(db, one.rows_for(due[0], now=clock.now))),
        len(await outbox.insert(db, two.rows_for(due[0], now=clock.now))),
    ]
    assert written == [1, 0]
    assert await one.tick() == 0 and await two.tick() == 0
    assert await rows(db, sub.id) == [(utc(2026, 1, 5, 6), "pending", "scheduled")]
    assert (await subs.get(db, sub.id)).next_fire_at == utc(2026, 1, 6, 6)


async def test_daily_rows_follow_the_subscriber_zone_across_dst(db) -> None:
    clock = Clock(utc(2026, 3, 27, 12))
    sub = await subscribe(db, clock)
    scheduler = Scheduler(db, catchup=timedelta(hours=6), clock=clock)
    while clock.now < utc(2026, 3, 31):
        clock.now += timedelta(minutes=30)
        await scheduler.tick()
    assert [p for p, _, _ in await rows(db, sub.id)] == [
        utc(2026, 3, 28, 6),
        utc(2026, 3, 29, 5),
        utc(2026, 3, 30, 5),
    ]


async def test_after_a_three_hour_stop_one_catch_up_then_the_schedule(db) -> None:
    clock = Clock(utc(2026, 1, 5, 4, 0))
    sub = await subscribe(db, clock)
    clock.now = utc(2026, 1, 5, 9, 0)  # stopped 04:00–09:00 UTC; 07:00 Paris (06:00 UTC) missed
    scheduler = Scheduler(db, catchup=timedelta(hours=6), clock=clock)
    assert await scheduler.tick() == 1
    assert await rows(db, sub.id) == [(utc(2026, 1, 5, 6), "pending", "catch-up")]
    clock.now = utc(2026, 1, 6, 6, 0, 1)
    await scheduler.tick()
    assert [r[1:] for r in await rows(db, sub.id)] == [
        ("pending", "catch-up"),
        ("pending", "scheduled"),
    ]


async def test_after_a_three_day_stop_older_periods_are_skipped(db) -> None:
    clock = Clock(utc(2026, 1, 5, 4, 0))
    sub = await subscribe(db, clock)
    clock.now = utc(2026, 1, 8, 8, 0)  # three days later, two hours after the last 07:00 Paris
    scheduler = Scheduler(db, catchup=timedelta(hours=6), clock=clock)
    await scheduler.tick()
    assert await rows(db, sub.id) == [
        (utc(2026, 1, 5, 6), "skipped", "catch-up"),
        (utc(2026, 1, 6, 6), "skipped", "catch-up"),
        (utc(2026, 1, 7, 6), "skipped", "catch-up"),
        (utc(2026, 1, 8, 6), "pending", "catch-up"),
    ]
    assert (await subs.get(db, sub.id)).next_fire_at == utc(2026, 1, 9, 6)


async def test_a_stop_longer_than_the_catch_up_window_sends_nothing_old(db) -> None:
    clock = Clock(utc(2026, 1, 5, 4, 0))
    sub = await subscribe(db, clock)
    clock.now = utc(2026, 1, 8, 18, 0)  # the last 07:00 Paris is 11 hours old
    await Scheduler(db, catchup=timedelta(hours=6), clock=clock).tick()
    statuses = [s for _, s, _ in await rows(db, sub.id)]
    assert statuses == ["skipped"] * 4


async def test_a_very_long_stop_of_a_frequent_schedule_is_bounded(db) -> None:
    clock = Clock(utc(2026, 1, 1, 0, 0))
    sub = await subscribe(db, clock, cron="* * * * *", timezone="UTC")
    clock.now = utc(2026, 1, 10, 0, 0, 30)  # nine days of a per-minute schedule
    await Scheduler(db, catchup=timedelta(hours=6), clock=clock).tick()
    found = await rows(db, sub.id)
    assert len(found) <= 1001 and found[-1] == (utc(2026, 1, 10, 0, 0), "pending", "scheduled")


async def test_schedule_changes_apply_at_once(db) -> None:
    clock = Clock(utc(2026, 1, 5, 4, 0))
    sub = await subscribe(db, clock)
    await subs.update_fields(
        db,
        sub.id,
        now=clock.now,
        cron="30 5 * * *",
        next_fire_at=next_fire("30 5 * * *", "Europe/Paris", after=clock.now),
    )
    clock.now = utc(2026, 1, 5, 4, 30, 5)
    await Scheduler(db, catchup=timedelta(hours=6), clock=clock).tick()
    assert [p for p, _, _ in await rows(db, sub.id)] == [utc(2026, 1, 5, 4, 30)]


async def test_paused_subscriptions_do_not_fire(db) -> None:
    clock = Clock(utc(2026, 1, 5, 4, 0))
    sub = await subscribe(db, clock)
    await subs.set_status(db, sub.id, subs.PAUSED, now=clock.now, reason="test")
    clock.now = utc(2026, 1, 5, 6, 0, 5)
    assert await Scheduler(db, catchup=timedelta(hours=6), clock=clock).tick() == 0
