"""Recording outcomes: batched writes to the outbox, then the pause rule."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.delivery import Status
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database

log = logging.getLogger("briefing.worker")
DEAD_IN_A_ROW_TO_PAUSE = 3


class Recorder:
    """Gathers outcomes and writes them in one transaction per batch; pauses the
    subscriptions whose target is gone or whose last deliveries all died."""

    def __init__(
        self,
        db: Database,
        *,
        owner: str,
        clock: Callable[[], datetime],
        on_paused: Callable[[int], None] = lambda subscription_id: None,
    ) -> None:
        self.db = db
        self.owner = owner
        self.clock = clock
        self.on_paused = on_paused
        self.listeners: list[Callable[[Sequence[outbox.Finished]], None]] = []
        self._pending: list[outbox.Finished] = []

    def add(self, finished: outbox.Finished) -> int:
        """Keep an outcome for the next flush; return how many are waiting."""
        self._pending.append(finished)
        return len(self._pending)

    async def flush(self) -> None:
        """Write what was gathered; on a database error keep it for the next flush."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        now = self.clock()
        try:
            await outbox.record(self.db, batch, owner=self.owner, now=now)
        except BaseException:
            self._pending = batch + self._pending
            raise
        counts = collections.Counter(item.outcome.status for item in batch)
        log.info("recorded %s", ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        for listener in self.listeners:
            listener(batch)
        await self._pause(batch, now=now)

    async def _pause(self, batch: Sequence[outbox.Finished], *, now: datetime) -> None:
        dead = [item for item in batch if item.outcome.status == Status.DEAD]
        if not dead:
            return
        gone = {i.subscription_id: i.outcome.pause for i in dead if i.outcome.pause}
        for subscription_id, reason in gone.items():
            log.warning("pausing subscription %s: %s", subscription_id, reason)
            await subs.set_status(self.db, subscription_id, subs.PAUSED, now=now, reason=reason)
            self.on_paused(subscription_id)
        failing = await subs.pause_failing(
            self.db,
            {i.subscription_id for i in dead} - set(gone),
            in_a_row=DEAD_IN_A_ROW_TO_PAUSE,
            now=now,
        )
        for subscription_id, reason in failing.items():
            log.warning("pausing subscription %s: %s", subscription_id, reason)
            self.on_paused(subscription_id)
