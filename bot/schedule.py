"""Scheduling: cron triggers in each subscriber's timezone → outbox rows.

Every active subscription keeps its next firing time in the database. APScheduler's
``AsyncIOScheduler`` runs a short tick that turns every firing that has come into an outbox
row keyed by (subscription, period), so a second writer (another instance) is harmless.
After downtime, the most recent missed period within ``BRIEFING_CATCHUP`` is sent once;
older ones are recorded as skipped. Fire times come from APScheduler's ``CronTrigger``
(right across DST); a wall-clock time that occurs twice (autumn) fires once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.delivery import Status, Trigger
from bot.errors import ConfigError
from bot.state.model import check_timezone
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database

log = logging.getLogger("briefing.schedule")
_AT = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MAX_RECORDED_MISSES = 1000
_SECOND = timedelta(seconds=1)


def schedule_from(*, at: str | None, cron: str | None) -> str:
    """A crontab line from ``--at HH:MM`` or ``--cron``; ``ConfigError`` naming the problem."""
    if at and cron:
        raise ConfigError("give --at or --cron, not both")
    if cron is None:
        match = _AT.match(at or "07:00")
        if not match:
            raise ConfigError(f"--at {at!r}: expected a time of day as HH:MM (e.g. 07:00)")
        cron = f"{int(match.group(2))} {int(match.group(1))} * * *"
    trigger_for(cron, "UTC")
    return cron


@lru_cache(maxsize=4096)
def trigger_for(cron: str, timezone: str) -> CronTrigger:
    """The cron trigger for a crontab line in a zone; ``ConfigError`` if either is invalid."""
    try:
        zone = check_timezone(timezone)
    except ValueError as exc:
        raise ConfigError(f"--timezone: {exc}") from exc
    if len(cron.split()) != 5:
        raise ConfigError(f"--cron {cron!r}: expected five fields 'minute hour day month weekday'")
    try:
        return CronTrigger.from_crontab(cron, timezone=zone)
    except ValueError as exc:
        raise ConfigError(f"--cron {cron!r}: {exc}") from exc


@lru_cache(maxsize=16384)
def next_fire(cron: str, timezone: str, *, after: datetime) -> datetime | None:
    """The first firing strictly after ``after``; the second pass of a repeated wall-clock
    time (when clocks go back) does not fire again. Cached: the many subscriptions that
    share a schedule cost one computation a tick."""
    trigger = trigger_for(cron, timezone)
    zone = ZoneInfo(timezone)
    moment = after
    for _ in range(3):
        # cron fires on whole seconds: the next whole second after ``moment`` is "strictly after"
        start = moment.astimezone(UTC).replace(microsecond=0) + _SECOND  # UTC: no wall-clock maths
        fire: datetime | None = trigger.get_next_fire_time(None, start)
        if fire is None:
            return None
        wall = fire.astimezone(zone).replace(tzinfo=None)
        first = wall.replace(tzinfo=zone, fold=0)
        if first.astimezone(UTC) >= fire.astimezone(UTC):
            return fire.astimezone(UTC)
        moment = fire
    return None


def fire_times(
    cron: str, timezone: str, *, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """Firings in ``(after, until]``, at most ``limit`` of them (the earliest)."""
    times: list[datetime] = []
    moment = after
    while len(times) < limit:
        fire = next_fire(cron, timezone, after=moment)
        if fire is None or fire > until:
            break
        times.append(fire)
        moment = fire
    return times


class Scheduler:
    """Turns due firings into outbox rows, on an APScheduler interval job."""

    def __init__(
        self,
        db: Database,
        *,
        catchup: timedelta,
        clock: Callable[[], datetime],
        on_rows: Callable[[], None] = lambda: None,
        on_tick: Callable[[datetime], None] = lambda now: None,
        interval: float = 1.0,
    ) -> None:
        self.db = db
        self.catchup = catchup
        self.clock = clock
        self.on_rows = on_rows
        self.on_tick = on_tick
        self.interval = interval
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        first = self.clock().replace(microsecond=0) + _SECOND  # ticks on whole seconds
        self._scheduler.add_job(
            self.tick, IntervalTrigger(seconds=self.interval, start_date=first), id="tick",
            max_instances=1, coalesce=True, misfire_grace_time=None, next_run_time=first,
        )  # fmt: skip
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def tick(self) -> int:
        """Write outbox rows for every firing that has come; return how many rows are new."""
        now = self.clock()
        written = 0
        while True:
            due = await subs.due(self.db, now=now, limit=1000)
            if not due:
                break
            rows = [row for sub in due for row in self.rows_for(sub, now=now)]
            advance = [(sub.id, next_fire(sub.cron, sub.timezone, after=now)) for sub in due]
            async with self.db.engine.begin() as conn:
                # one transaction: a period is never lost between the two
                queued = len(await outbox.insert_in(conn, rows))
                await subs.advance_in(conn, advance, now=now)
            if queued:
                self.on_rows()  # the worker starts on these while the next batch is queued
            written += queued
        self.on_tick(now)
        if written:
            log.info("queued %d deliveries", written)
            upcoming = await subs.upcoming(self.db, limit=1)
            if upcoming and upcoming[0].next_fire_at:
                log.info(
                    "next firing: subscription %s at %s UTC",
                    upcoming[0].id,
                    upcoming[0].next_fire_at.strftime("%Y-%m-%d %H:%M"),
                )
        return written

    def rows_for(self, sub: subs.Subscription, *, now: datetime) -> list[dict[str, object]]:
        """Outbox rows for a due subscription: the latest period, older misses skipped."""
        assert sub.next_fire_at is not None
        periods = [sub.next_fire_at, *fire_times(
            sub.cron, sub.timezone, after=sub.next_fire_at, until=now, limit=MAX_RECORDED_MISSES,
        )]  # fmt: skip
        if periods[-1] < now - self.catchup * 2 and len(periods) >= MAX_RECORDED_MISSES:
            # a long stop: jump to the periods that can still matter
            periods = (
                fire_times(
                    sub.cron,
                    sub.timezone,
                    after=now - self.catchup,
                    until=now,
                    limit=MAX_RECORDED_MISSES,
                )
                or periods[-1:]
            )
        latest, older = periods[-1], periods[:-1]
        rows = [
            outbox.new_row(sub.id, p, now=now, trigger=Trigger.CATCH_UP, status=Status.SKIPPED,
                           note="missed while the bot was stopped; not sent as a backlog")
            for p in older
        ]  # fmt: skip
        if now - latest <= self.catchup:
            late = now - latest > timedelta(minutes=1)
            rows.append(
                outbox.new_row(
                    sub.id, latest, now=now, trigger=Trigger.CATCH_UP if late else Trigger.SCHEDULED
                )
            )
            if late:
                log.info("subscription %s: catching up on the period of %s", sub.id, latest)
        else:
            rows.append(outbox.new_row(
                sub.id, latest, now=now, trigger=Trigger.CATCH_UP, status=Status.SKIPPED,
                note=f"missed by more than the catch-up window ({self.catchup})",
            ))  # fmt: skip
        return rows
