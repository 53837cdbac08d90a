"""The worker: claim due outbox rows, render (cached), send, retry, record.

Each distinct (state revision, topics, locale, timezone, window, format) is rendered once
and shared by every subscriber who needs it. Sends run with bounded concurrency; outcomes
are written in batches; leases are renewed while sending, and rows still in flight at
shutdown go back to the queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.delivery import RetryPolicy, render_message
from bot.digest import DigestRenderer, ReaderOptions, Window, compose
from bot.digest.model import Digest
from bot.errors import BriefingError, DeliveryError, PermanentDeliveryError
from bot.outputs import Envelope, Message, Output, OutputContext, Target, output_class
from bot.state import State
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database
from bot.store.states import StateSource

log = logging.getLogger("briefing.dispatch")
DEAD_IN_A_ROW_TO_PAUSE = 3
SCHEDULED = RetryPolicy()
T = TypeVar("T")


class RenderCache:
    """Digests and messages by everything that decides their content (bounded LRU)."""

    def __init__(self, renderer: DigestRenderer, *, size: int = 512) -> None:
        self.renderer = renderer
        self.size = size
        self._digests: OrderedDict[tuple[Any, ...], Digest] = OrderedDict()
        self._messages: OrderedDict[tuple[Any, ...], Message] = OrderedDict()
        self.renders = 0

    def digest(self, state: State, options: ReaderOptions, window: Window) -> Digest:
        key = (state.revision, options, window.start, window.end)
        return self._cached(self._digests, key, lambda: compose(state, options, window))

    def message(self, digest: Digest, output: type[Output], key: tuple[Any, ...]) -> Message:
        def build() -> Message:
            self.renders += 1
            return render_message(self.renderer, digest, output)

        return self._cached(self._messages, (*key, output.formats), build)

    def _cached(
        self,
        cache: OrderedDict[tuple[Any, ...], T],
        key: tuple[Any, ...],
        build: Callable[[], T],
    ) -> T:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        value = cache[key] = build()
        if len(cache) > self.size:
            cache.popitem(last=False)
        return value


@dataclass
class Result:
    """What happened to one row, as column values to record."""

    row_id: int
    values: dict[str, Any]
    pause: str | None = None
    check_dead: int | None = None


class Dispatcher:
    """Sends what the outbox holds. One per process; safe alongside other processes."""

    def __init__(
        self,
        db: Database,
        context: OutputContext,
        *,
        renderer: DigestRenderer,
        clock: Callable[[], datetime],
        policy: RetryPolicy = SCHEDULED,
        concurrency: int = 64,
        lease: timedelta = timedelta(seconds=30),
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.context = context
        self.cache = RenderCache(renderer)
        self.clock = clock
        self.policy = policy
        self.concurrency = concurrency
        self.lease = lease
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.states = StateSource(db)
        self.wake = asyncio.Event()
        self._outputs: dict[str, Output] = {}
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._pending: list[Result] = []
        self._slots = asyncio.Semaphore(concurrency)
        self._windows: dict[int, datetime] = {}
        self._subs: dict[int, subs.Subscription] = {}
        self._state: State | None = None
        self._watched: set[int] = set()
        self._outcomes: dict[int, tuple[str, datetime | None]] = {}

    def output(self, kind: str) -> Output:
        if kind not in self._outputs:
            self._outputs[kind] = output_class(kind)(self.context)
        return self._outputs[kind]

    async def run(self, stop: asyncio.Event, *, grace: float = 25.0) -> None:
        """Claim and send until ``stop`` is set; then finish or give back what is in flight."""
        keeper = asyncio.create_task(self._keep_leases(stop))
        flusher = asyncio.create_task(self._flush_loop(stop))
        try:
            while not stop.is_set():
                if not self._has_room():
                    await asyncio.wait(
                        list(self._inflight.values()),
                        timeout=1.0,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    continue
                claimed = await self.step()
                if not claimed:
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await _first(self.wake.wait(), stop.wait())
        finally:
            await self._drain(grace)
            keeper.cancel()
            flusher.cancel()
            await self.flush()
            await self.close()

    async def step(self, *, period: datetime | None = None) -> int:
        """Claim what fits in the free slots and start sending it; return how many.

        ``period`` limits the claim to the rows of one period (a manual send's)."""
        if not self._has_room():
            return 0
        try:
            rows = await outbox.claim(
                self.db,
                owner=self.owner,
                now=self.clock(),
                limit=self.concurrency * 2 - len(self._inflight),
                lease=self.lease,
                period=period,
            )
            if rows:
                await self._prepare(rows)
        except Exception as exc:  # the database may be briefly away; try again soon
            log.warning("cannot claim deliveries: %s", exc)
            await asyncio.sleep(1.0)
            return 0
        for row in rows:
            task = asyncio.create_task(self._process(row))
            self._inflight[row.id] = task
            task.add_done_callback(self._forget(row.id))
        return len(rows)

    def _has_room(self) -> bool:
        """Claim in batches (up to twice the concurrency in hand), not row by row."""
        return len(self._inflight) <= self.concurrency * 3 // 2

    def _forget(self, row_id: int) -> Callable[[asyncio.Task[None]], None]:
        def forget(_task: asyncio.Task[None]) -> None:
            self._inflight.pop(row_id, None)

        return forget

    async def until_done(
        self,
        ids: list[int],
        *,
        period: datetime | None,
        horizon: float = 15.0,
        progress: Callable[[int], None] = lambda n: None,
    ) -> None:
        """Send the rows ``ids`` (all of ``period``) in this process until each is finished or
        waits longer than ``horizon`` seconds for its next try (it stays queued for
        ``briefing run``)."""
        open_ids = set(ids)
        self._watched |= open_ids
        while open_ids:
            claimed = await self.step(period=period)
            if self._inflight:
                await asyncio.wait(
                    list(self._inflight.values()), timeout=0.05, return_when=asyncio.FIRST_COMPLETED
                )
            else:
                await asyncio.sleep(0.05)
            await self.flush()
            later = self.clock() + timedelta(seconds=horizon)
            outcomes, self._outcomes = self._outcomes, {}
            if not claimed and not self._inflight and not outcomes:
                # idle: what is left is waiting for a retry or in another worker's hands
                rows = await outbox.listing(self.db, ids=sorted(open_ids), limit=len(open_ids))
                outcomes = {
                    r.id: (r.status, r.next_attempt_at) for r in rows if r.status != outbox.SENDING
                }
            done = {
                rid for rid, (status, retry_at) in outcomes.items()
                if status in outbox.TERMINAL or (retry_at is not None and retry_at > later)
            }  # fmt: skip
            if done:
                progress(len(done))
                open_ids -= done
                self._watched -= done

    async def _prepare(self, rows: list[outbox.Delivery]) -> None:
        """Load what the claimed rows need: subscriptions, last windows, the state."""
        for sub in await subs.by_ids(self.db, {r.subscription_id for r in rows}):
            self._subs[sub.id] = sub
        fresh = [r.subscription_id for r in rows if r.window_start is None]
        self._windows.update(await outbox.last_windows(self.db, fresh))
        self._state = await self.states.latest()

    async def _process(self, row: outbox.Delivery) -> None:
        async with self._slots:
            try:
                result = await self._deliver(row)
            except BriefingError as exc:
                result = self._failure(row, PermanentDeliveryError(str(exc)))
        self._pending.append(result)
        if len(self._pending) >= 200:
            try:
                await self.flush()
            except Exception as exc:  # kept for the next flush
                log.warning("cannot record deliveries yet: %s", exc)

    async def _deliver(self, row: outbox.Delivery) -> Result:
        sub = self._subs.get(row.subscription_id) or await subs.get(self.db, row.subscription_id)
        if sub.status != subs.ACTIVE and row.trigger != "manual":
            return Result(
                row.id, {"status": outbox.SKIPPED, "last_answer": f"subscription {sub.status}"}
            )
        state = self._state
        if state is None:
            raise BriefingError("no briefing state imported yet")
        since = row.window_start or self._windows.get(sub.id)
        window = Window.ending(row.period, since=min(since, row.period) if since else None)
        options = ReaderOptions(topics=sub.topics, locale=sub.locale, timezone=sub.timezone)
        digest = self.cache.digest(state, options, window)
        base = {
            "window_start": window.start,
            "window_end": window.end,
            "state_revision": state.revision,
        }
        if sub.skip_empty and digest.is_empty:
            return Result(
                row.id, {**base, "status": outbox.SKIPPED, "last_answer": "no news (skip-empty)"}
            )
        output = self.output(sub.kind)
        message = self.cache.message(digest, type(output), (state.revision, options, window))
        target = Target(kind=sub.kind, address=sub.address, secrets=sub.secrets)
        envelope = Envelope(row.delivery_key, row.first_part, sub.unsubscribe_token)
        try:
            receipt = await output.send(target, message, envelope=envelope)
        except DeliveryError as exc:
            failure = self._failure(row, exc)
            failure.values.update(base)
            return failure
        now = self.clock()
        return Result(row.id, {
            **base, "status": outbox.DELIVERED, "delivered_at": now, "last_status": receipt.status,
            "last_answer": receipt.answer, "parts": receipt.parts, "lease_owner": None,
            "lease_until": None,
        })  # fmt: skip

    def _failure(self, row: outbox.Delivery, exc: DeliveryError) -> Result:
        now = self.clock()
        first_part = max(row.first_part, exc.parts_done)
        values: dict[str, Any] = {
            "last_status": str(exc.status) if exc.status is not None else "error",
            "last_answer": exc.reason[:2000], "first_part": first_part,
            "lease_owner": None, "lease_until": None,
        }  # fmt: skip
        wait = self.policy.next_wait(row.attempts, exc)
        if wait is None:
            values["status"] = outbox.DEAD
            log.warning(
                "delivery %s (subscription %s) failed for good after %d attempt(s): %s",
                row.delivery_key,
                row.subscription_id,
                row.attempts,
                exc.reason,
            )
            gone = isinstance(exc, PermanentDeliveryError) and exc.gone
            reason = f"receiver answered {exc.status}: the target is gone" if gone else None
            return Result(row.id, values, pause=reason, check_dead=row.subscription_id)
        values.update(status=outbox.PENDING, next_attempt_at=now + timedelta(seconds=wait))
        return Result(row.id, values)

    async def flush(self) -> None:
        """Record the outcomes gathered so far, in one statement."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        now = self.clock()
        try:
            await outbox.record(
                self.db,
                [
                    {"row_id": r.row_id, "updated_at": now, "sent_by": self.owner, **r.values}
                    for r in batch
                ],
                owner=self.owner,
            )
        except Exception:
            self._pending = batch + self._pending  # keep them; the next flush tries again
            raise
        counts = collections.Counter(r.values["status"] for r in batch)
        log.info("recorded %s", ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        for result in batch:
            if result.row_id in self._watched:
                self._outcomes[result.row_id] = (
                    result.values["status"],
                    result.values.get("next_attempt_at"),
                )
            if result.pause:
                await self._pause(result.check_dead or 0, result.pause)
            elif result.check_dead is not None:
                recent = await outbox.recent_statuses(
                    self.db, result.check_dead, limit=DEAD_IN_A_ROW_TO_PAUSE
                )
                if len(recent) == DEAD_IN_A_ROW_TO_PAUSE and set(recent) == {outbox.DEAD}:
                    await self._pause(
                        result.check_dead,
                        f"the last {DEAD_IN_A_ROW_TO_PAUSE} "
                        "deliveries failed for good; resume it once the target works",
                    )

    async def _pause(self, subscription_id: int, reason: str) -> None:
        log.warning("pausing subscription %s: %s", subscription_id, reason)
        await subs.set_status(
            self.db, subscription_id, subs.PAUSED, now=self.clock(), reason=reason
        )
        self._subs.pop(subscription_id, None)

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.05)
            try:
                await self.flush()
            except Exception as exc:  # the database may be briefly away
                log.warning("cannot record deliveries yet: %s", exc)

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await outbox.renew(
                    self.db, list(self._inflight), owner=self.owner, until=self.clock() + self.lease
                )
            except Exception as exc:
                log.warning("cannot renew leases: %s", exc)

    async def _drain(self, grace: float) -> None:
        if self._inflight:
            log.info(
                "letting %d in-flight deliveries finish (up to %.0f s)", len(self._inflight), grace
            )
            _, late = await asyncio.wait(list(self._inflight.values()), timeout=grace)
            ids = [rid for rid, task in list(self._inflight.items()) if task in late]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            with contextlib.suppress(Exception):
                await outbox.release(self.db, ids, owner=self.owner, now=self.clock())

    async def close(self) -> None:
        for output in self._outputs.values():
            await output.aclose()
        self._outputs.clear()


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
