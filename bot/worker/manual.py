"""Waiting for the rows of a manual send (``briefing send``), sent in this process."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.delivery import Status
from bot.store import outbox
from bot.worker.leases import DATABASE_AWAY
from bot.worker.worker import FLUSH_EVERY, Worker


async def send_and_wait(
    worker: Worker,
    ids: list[int],
    *,
    period: datetime | None,
    horizon: float = 15.0,
    progress: Callable[[int], None] = lambda n: None,
) -> None:
    """Send the rows ``ids`` (all of ``period``) until each is finished or waits longer than
    ``horizon`` seconds for its next try (it stays queued for ``briefing run``)."""
    open_ids = set(ids)
    seen: dict[int, tuple[Status, datetime | None]] = {}

    def note(batch: Sequence[outbox.Finished]) -> None:
        for item in batch:
            if item.row_id in open_ids:
                seen[item.row_id] = (item.outcome.status, item.outcome.retry_at)

    worker.recorder.listeners.append(note)
    flushed = time.monotonic()
    try:
        while open_ids:
            claimed = await worker.step(period=period)
            await worker.progress(within=FLUSH_EVERY)
            if worker.busy and time.monotonic() - flushed < FLUSH_EVERY:
                continue  # outcomes are written together, every FLUSH_EVERY seconds
            flushed = time.monotonic()
            try:
                await worker.recorder.flush()
            except DATABASE_AWAY:
                continue  # kept; recorded at the next turn
            later = worker.clock() + timedelta(seconds=horizon)
            outcomes = dict(seen)
            seen.clear()
            if not claimed and not worker.busy and not outcomes:
                # idle: what is left waits for a retry or is in another worker's hands
                rows = await outbox.listing(
                    worker.db,
                    ids=None if period else sorted(open_ids),
                    period=period,
                    statuses=[s for s in Status if s != Status.SENDING],
                    limit=len(ids),
                )
                outcomes = {r.id: (r.status, r.next_attempt_at) for r in rows if r.id in open_ids}
            done = {
                row_id for row_id, (status, retry_at) in outcomes.items()
                if status.final or (retry_at is not None and retry_at > later)
            }  # fmt: skip
            if done:
                progress(len(done))
                open_ids -= done
    finally:
        worker.recorder.listeners.remove(note)
