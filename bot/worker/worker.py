"""The worker loop: claim due rows, send each with bounded concurrency, record the outcome.

Whatever happens to a row while it is sent ends as its recorded outcome: the bot's own
errors as they say, a send that outlives ``send_timeout`` as a retryable failure, anything
else as a retryable failure logged once with its traceback. Rows still in flight at
shutdown go back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.delivery import (
    OPERATOR,
    SCHEDULED,
    Outcome,
    RetryPolicy,
    Status,
    render_message,
    send_within,
)
from bot.digest import DigestRenderer, ReaderOptions, Window, compose
from bot.digest.compose import STALE_AFTER
from bot.errors import (
    BriefingError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    TargetError,
)
from bot.outputs import OutputContext
from bot.outputs.registry import OutputPool
from bot.redact import scrub
from bot.state.model import LOCALES
from bot.store import outbox
from bot.store.database import Database
from bot.worker.leases import DATABASE_AWAY, Leases
from bot.worker.prepare import Prepared, Preparer
from bot.worker.record import Recorder

log = logging.getLogger("briefing.worker")
BATCH = 200
FLUSH_EVERY = 0.05
"""Seconds between writes of the outcomes gathered (sooner when a batch is full)."""
EVERYTHING = datetime(1970, 1, 1, tzinfo=UTC)


class Worker:
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
        send_timeout: float = 300.0,
        owner: str | None = None,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self.concurrency = concurrency
        self.send_timeout = send_timeout
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.renderer = renderer
        self.outputs = OutputPool(context)
        self.leases = Leases(
            db, owner=self.owner, clock=clock, lease=lease, max_attempts=policy.attempts
        )
        self.preparer = Preparer(db, self.outputs, renderer, stale_after=stale_after)
        self.recorder = Recorder(db, owner=self.owner, clock=clock, on_paused=self.preparer.forget)
        self.wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._finished = asyncio.Event()  # set whenever a send in flight finishes
        self._fault: BaseException | None = None  # what stopped a task of the worker's
        self.on_sent: list[Callable[[str, Outcome, float], None]] = []
        """Called after each attempt with the output's name, the outcome and the seconds it
        took (metrics)."""

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    async def check(self, kinds: Collection[str] | None = None) -> None:
        """Build the outputs for ``kinds`` (every registered one by default) and render the
        current state through every template they use, in every language, so that an
        operator's mistake (a setting, a template) stops the process before anything is
        sent. Raise ``ConfigError`` naming the setting or the file."""
        outputs = self.outputs.check(kinds)
        state = await self.preparer.states.latest()
        if state is None:
            return
        window = Window.ending(self.clock(), since=EVERYTHING)
        for locale in LOCALES:
            digest = compose(state, ReaderOptions(locale=locale), window)
            for output in outputs:
                render_message(self.renderer, digest, type(output))

    async def run(self, stop: asyncio.Event, *, grace: float = 25.0) -> None:
        """Claim and send until ``stop`` is set; then finish or give back what is in flight."""
        keeper = asyncio.create_task(self.leases.keep(lambda: self._inflight, stop))
        flusher = asyncio.create_task(self._flush_loop(stop))
        for task in (keeper, flusher):
            task.add_done_callback(self._watch)
        try:
            while not stop.is_set():
                if not self._has_room():
                    await self.progress(within=1.0)
                    continue
                if not await self.step():
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await _first(self.wake.wait(), stop.wait())
        finally:
            await self._drain(grace)
            keeper.cancel()
            flusher.cancel()
            with contextlib.suppress(*DATABASE_AWAY):
                await self.recorder.flush()
            await self.close()

    async def step(self, *, period: datetime | None = None) -> int:
        """Claim what fits in the free slots and start sending it; return how many.

        ``period`` limits the claim to the rows of one period (a manual send's). Raise what
        stopped a task of the worker's (anything but the database being away, such as a bug in
        recording outcomes), rather than send rows whose outcomes cannot be written."""
        if self._fault is not None:
            raise self._fault
        if not self._has_room():
            return 0
        try:
            rows = await self.leases.claim(
                self.concurrency * 4 - len(self._inflight), period=period
            )
            if rows:
                await self.preparer.load(rows)
        except DATABASE_AWAY as exc:  # the database may be briefly away; try again soon
            log.warning("cannot claim deliveries: %s", exc)
            await asyncio.sleep(1.0)
            return 0
        for row in rows:
            task = asyncio.create_task(self._process(row))
            self._inflight[row.id] = task
            task.add_done_callback(self._forget(row.id))
        return len(rows)

    async def progress(self, *, within: float) -> None:
        """Wait until a send in flight finishes, or ``within`` seconds."""
        self._finished.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._finished.wait()

    def _forget(self, row_id: int) -> Callable[[asyncio.Task[None]], None]:
        def forget(task: asyncio.Task[None]) -> None:
            self._inflight.pop(row_id, None)
            self._finished.set()
            self._watch(task)

        return forget

    def _watch(self, task: asyncio.Task[None]) -> None:
        """Keep the first error that ended ``task``, for ``step`` to raise."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._fault = self._fault or exc
            self.wake.set()

    def _has_room(self) -> bool:
        """Claim in batches (up to four times the concurrency in hand), not row by row."""
        return len(self._inflight) <= self.concurrency * 2

    async def _process(self, row: outbox.Claimed) -> None:
        async with self._slots:
            finished = await self._attempt(row)
        if self.recorder.add(finished) >= BATCH:
            await self._flush_quietly()

    async def _attempt(self, row: outbox.Claimed) -> outbox.Finished:
        """Send ``row`` once; whatever happens becomes its outcome."""
        prepared: Prepared | None = None
        started = time.monotonic()
        try:
            ready = self.preparer.prepare(row)
            if isinstance(ready, outbox.Finished):
                return ready
            prepared = ready
            receipt = await send_within(
                prepared.output, prepared.target, prepared.message,
                envelope=prepared.envelope, seconds=self.send_timeout,
            )  # fmt: skip
        except DeliveryError as exc:
            outcome = self._failed(row, exc)
        except TargetError as exc:  # the reader's target, refused at send time
            outcome = self._failed(row, PermanentDeliveryError(self._shown(str(exc), prepared)))
        except BriefingError as exc:  # settings, templates, state: the operator's to fix
            log.error(
                "delivery %s (subscription %s) cannot be sent because of the bot's "
                "configuration, not the reader's: %s",
                row.delivery_id, row.subscription_id, exc,
            )  # fmt: skip
            outcome = self._failed(row, RetryableDeliveryError(str(exc)), code=OPERATOR)
        except Exception as exc:
            log.error(  # the traceback as text, so that the target's tokens are hidden in it
                "delivery %s (subscription %s) failed with an unexpected error\n%s",
                row.delivery_id, row.subscription_id,
                self._shown("".join(traceback.format_exception(exc)).rstrip(), prepared),
            )  # fmt: skip
            reason = f"unexpected error: {type(exc).__name__}: {self._shown(str(exc), prepared)}"
            outcome = self._failed(row, RetryableDeliveryError(reason))
        else:
            outcome = Outcome(Status.DELIVERED, receipt.answer, receipt.status, receipt.parts)
        window, revision = (prepared.window, prepared.revision) if prepared else (None, None)
        kind = prepared.target.kind if prepared else "unknown"
        for listener in self.on_sent:
            listener(kind, outcome, time.monotonic() - started)
        return outbox.Finished(row.id, row.subscription_id, outcome, window, revision)

    @staticmethod
    def _shown(text: str, prepared: Prepared | None) -> str:
        """An error as recorded or logged: the target's URL, any piece of it, and its
        secrets hidden."""
        return scrub(text, prepared.target.address, prepared.target.secrets) if prepared else text

    def _failed(
        self, row: outbox.Claimed, exc: DeliveryError, *, code: str | None = None
    ) -> Outcome:
        outcome = self.policy.after_failure(
            exc, attempt=row.attempts, parts=row.first_part, now=self.clock(), code=code
        )
        if outcome.retry_at is not None:
            log.info(
                "delivery %s (subscription %s): attempt %d failed (%s %s); next try at %s",
                row.delivery_id, row.subscription_id, row.attempts, outcome.code,
                outcome.answer, outcome.retry_at.isoformat(timespec="seconds"),
            )  # fmt: skip
        else:
            log.warning(
                "delivery %s (subscription %s) failed for good after %d attempt(s): %s %s",
                row.delivery_id, row.subscription_id, row.attempts, outcome.code, outcome.answer,
            )  # fmt: skip
        return outcome

    async def _flush_quietly(self) -> None:
        try:
            await self.recorder.flush()
        except DATABASE_AWAY as exc:  # kept for the next flush
            log.warning("cannot record deliveries yet: %s", exc)

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(FLUSH_EVERY)
            await self._flush_quietly()

    async def _drain(self, grace: float) -> None:
        if not self._inflight:
            return
        log.info(
            "letting %d in-flight deliveries finish (up to %.0f s)", len(self._inflight), grace
        )
        _, late = await asyncio.wait(list(self._inflight.values()), timeout=grace)
        ids = [rid for rid, task in list(self._inflight.items()) if task in late]
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        await self.leases.give_back(ids)

    async def close(self) -> None:
        await self.outputs.aclose()


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
