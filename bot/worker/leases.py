"""Claiming outbox rows under a lease, keeping the lease while they are sent, giving back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError, OperationalError

from bot.store import outbox
from bot.store.database import Database

log = logging.getLogger("briefing.worker")
DATABASE_AWAY = (OperationalError, DBAPIError, OSError, TimeoutError)
"""What a briefly unreachable database raises; the loops wait and try again on these only."""


class Leases:
    """The rows one worker holds: claimed until ``now + lease``, renewed while in hand."""

    def __init__(
        self,
        db: Database,
        *,
        owner: str,
        clock: Callable[[], datetime],
        lease: timedelta,
        max_attempts: int,
    ) -> None:
        self.db = db
        self.owner = owner
        self.clock = clock
        self.lease = lease
        self.max_attempts = max_attempts

    async def claim(self, limit: int, *, period: datetime | None = None) -> list[outbox.Claimed]:
        """Up to ``limit`` due rows (of ``period`` only, if given)."""
        return await outbox.claim(
            self.db,
            owner=self.owner,
            now=self.clock(),
            limit=limit,
            lease=self.lease,
            max_attempts=self.max_attempts,
            period=period,
        )

    async def keep(self, in_hand: Callable[[], Collection[int]], stop: asyncio.Event) -> None:
        """Renew the lease of the rows in hand every third of a lease, until ``stop``."""
        while not stop.is_set():
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await outbox.renew(
                    self.db, list(in_hand()), owner=self.owner, until=self.clock() + self.lease
                )
            except DATABASE_AWAY as exc:
                log.warning("cannot renew leases: %s", exc)

    async def give_back(self, ids: Collection[int]) -> None:
        """Return unfinished rows to the queue as if they had not been tried (at shutdown)."""
        with contextlib.suppress(*DATABASE_AWAY):
            await outbox.release(self.db, list(ids), owner=self.owner, now=self.clock())
