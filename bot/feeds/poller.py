"""``briefing run``'s feed poller: each feed polled when due, failures backed off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from bot.feeds import store
from bot.feeds.ingest import PollResult, poll
from bot.feeds.operations import FeedSet
from bot.store.database import Database

log = logging.getLogger("briefing.feeds")
IDLE = 60.0  # the longest sleep between looks at what is due


class FeedPoller:
    """Polls every configured feed on its interval until ``stop`` is set. Each poll is
    bounded by the feed's timeout; a feed's failure is recorded and backed off, and never
    stops the others."""

    def __init__(self, db: Database, feeds: FeedSet, *, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.feeds = feeds
        self.clock = clock
        self.on_polled: list[Callable[[PollResult], None]] = []
        """Called after each recorded poll with what it did (metrics)."""

    async def run(self, stop: asyncio.Event) -> None:
        if not self.feeds.feeds:
            return
        log.info("polling %d news feed(s) from %s", len(self.feeds.feeds), self.feeds.feeds_path)
        while not stop.is_set():
            try:
                wait = await self.poll_due()
            except Exception:  # the database went away for a moment: try again later
                log.exception("feed poller: unexpected error")
                wait = IDLE
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def poll_due(self) -> float:
        """Poll the feeds that are due, together; return seconds until the next one is."""
        now = self.clock()
        states = await store.poll_states(self.db)
        due = [
            f
            for f in self.feeds.feeds
            if (s := states.get(f.url)) is None or s.next_poll_at is None or s.next_poll_at <= now
        ]
        if due:
            filing = asyncio.Lock()
            polls = [poll(self.db, f, self.feeds.rules, now=now, filing=filing) for f in due]
            for feed, outcome in zip(
                due, await asyncio.gather(*polls, return_exceptions=True), strict=True
            ):
                if isinstance(outcome, BaseException):  # the database, not the feed: logged once
                    log.error("feed %r: poll not recorded: %s", feed.name, outcome)
                    continue
                for listener in self.on_polled:
                    listener(outcome)
            states = await store.poll_states(self.db)
        now = self.clock()
        waits = [
            (s.next_poll_at - now).total_seconds()
            for f in self.feeds.feeds
            if (s := states.get(f.url)) is not None and s.next_poll_at is not None
        ]
        return max(0.5, min([IDLE, *waits]))
