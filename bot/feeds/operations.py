"""What the CLI and the HTTP API do with feeds: list them, ingest once, review
entries. Plain async functions over the database and the feed configuration."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.feeds import store
from bot.feeds.config import (
    FeedConfig,
    check_topics,
    load_feeds,
    load_topics,
    shipped_config,
)
from bot.feeds.ingest import PollResult, poll
from bot.feeds.store import EntryStatus, StoredEntry
from bot.feeds.topics import TopicRules
from bot.operations.common import NotFound
from bot.settings import Settings
from bot.store.database import Database
from bot.store.states import StateSource

IMPORTANCE = range(1, 6)


@dataclass(frozen=True)
class FeedSet:
    """The configured feeds and the topic rules, checked against the state's topics."""

    feeds: list[FeedConfig]
    rules: TopicRules
    feeds_path: Path
    topics_path: Path

    def find(self, name_or_url: str) -> FeedConfig | None:
        return next((f for f in self.feeds if name_or_url in (f.url, f.name)), None)


def feeds_path(settings: Settings) -> Path:
    return settings.feeds_file or shipped_config("feeds.yaml")


def topics_path(settings: Settings) -> Path:
    return settings.topics_file or shipped_config("topics.yaml")


async def known_topics(db: Database) -> list[str]:
    state = await StateSource(db).latest()
    if state is None:
        raise ConfigError("no briefing state imported yet (briefing state import)")
    return list(state.topics)


async def load_feed_set(
    db: Database, settings: Settings, *, known: list[str] | None = None
) -> FeedSet:
    """Read ``feeds.yaml`` and ``topics.yaml``, checked against the ``known`` topics (by
    default the stored state's); ``ConfigError`` naming the file and line."""
    known = known if known is not None else await known_topics(db)
    feeds_file, topics_file = feeds_path(settings), topics_path(settings)
    feeds = load_feeds(feeds_file)
    check_topics(feeds, feeds_file, known=known)
    rules = TopicRules(load_topics(topics_file, known=known))
    return FeedSet(feeds=feeds, rules=rules, feeds_path=feeds_file, topics_path=topics_file)


@dataclass(frozen=True)
class FeedListing:
    """A feed as ``briefing feeds`` lists it."""

    name: str
    url: str
    language: str
    publish: str
    interval_seconds: int
    topics: list[str] | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    next_poll: datetime | None
    taken: int
    unmatched: int
    duplicates: int


async def list_feeds(db: Database, feeds: FeedSet) -> list[FeedListing]:
    states = await store.poll_states(db)
    listing = []
    for feed in feeds.feeds:
        state = states.get(feed.url)
        listing.append(
            FeedListing(
                name=feed.name,
                url=feed.url,
                language=feed.language,
                publish=feed.publish,
                interval_seconds=int(feed.interval.total_seconds()),
                topics=list(feed.topics) if feed.topics is not None else None,
                last_success=state.last_success_at if state else None,
                last_error=state.last_error if state else None,
                last_error_at=state.last_error_at if state else None,
                next_poll=state.next_poll_at if state else None,
                taken=state.taken if state else 0,
                unmatched=state.unmatched if state else 0,
                duplicates=state.duplicates if state else 0,
            )
        )
    return listing


def adhoc_feed(target: str, *, name: str | None, language: str | None) -> FeedConfig:
    """A feed that is not in ``feeds.yaml``, ingested once by URL or file (its entries wait
    for review); ``ConfigError`` when it cannot be made."""
    if not language:
        raise ConfigError(
            f"{target!r} is not a feed of feeds.yaml: give its language with --language en|fr"
        )
    if urlsplit(target).scheme in ("http", "https"):
        url = target
    else:
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"{target!r} is neither a feed of feeds.yaml, a URL nor a file")
        url = path.absolute().as_uri()
    try:
        return FeedConfig(url=url, name=name or target, language=language)
    except ValueError as exc:
        raise ConfigError(f"{target!r}: {exc}") from exc


async def ingest(
    db: Database,
    feeds: FeedSet,
    targets: list[FeedConfig],
    *,
    now: datetime,
) -> list[PollResult]:
    """Poll each of ``targets`` once, one after the other (a feed's failure is its own)."""
    return [await poll(db, feed, feeds.rules, now=now) for feed in targets]


def editor(by: str | None) -> str:
    """Who decides: ``--by``, else ``BRIEFING_EDITOR``, else the user running the command."""
    if by and by.strip():
        return by.strip()
    from_env = os.environ.get("BRIEFING_EDITOR", "").strip()
    if from_env:
        return from_env
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


async def review_list(db: Database, *, unmatched: bool = False) -> list[StoredEntry]:
    """Entries waiting for review (or those matching no topic)."""
    status = EntryStatus.UNMATCHED if unmatched else EntryStatus.PENDING
    return await store.entries(db, statuses=[status])


async def accept(
    db: Database,
    entry_id: int,
    *,
    now: datetime,
    by: str,
    topic: str | None = None,
    importance: int | None = None,
) -> StoredEntry:
    """Accept a pending entry (or one that matched no topic, given ``topic``) as a report
    in digests from now on; ``ConfigError`` saying why not."""
    found = await _decidable(db, entry_id)
    if topic is not None and topic not in (known := await known_topics(db)):
        raise ConfigError(f"--topic: unknown topic {topic!r} (known: {', '.join(known)})")
    if found.topic is None and topic is None:
        raise ConfigError(f"entry {entry_id} matches no topic: give one with --topic")
    if importance is not None and importance not in IMPORTANCE:
        raise ConfigError(f"--importance: {importance} is not 1 to 5")
    done = await store.decide(
        db,
        entry_id,
        expected=[found.status],
        status=EntryStatus.ACCEPTED,
        now=now,
        by=by,
        topic=topic,
        importance=importance,
    )
    return await _decided(db, entry_id, done)


async def reject(
    db: Database, entry_id: int, *, now: datetime, by: str, reason: str | None = None
) -> StoredEntry:
    """Reject a pending (or unmatched) entry: it never reaches a digest."""
    found = await _decidable(db, entry_id)
    done = await store.decide(
        db,
        entry_id,
        expected=[found.status],
        status=EntryStatus.REJECTED,
        now=now,
        by=by,
        reason=reason,
    )
    return await _decided(db, entry_id, done)


async def _decidable(db: Database, entry_id: int) -> StoredEntry:
    found = await store.entry(db, entry_id)
    if found is None:
        raise NotFound(f"no feed entry {entry_id} (see 'briefing review list')")
    if found.status not in (EntryStatus.PENDING, EntryStatus.UNMATCHED):
        raise ConfigError(
            f"entry {entry_id} is already {found.status}"
            + (f" (by {found.decided_by})" if found.decided_by else "")
        )
    return found


async def _decided(db: Database, entry_id: int, done: bool) -> StoredEntry:
    found = await store.entry(db, entry_id)
    if not done or found is None:
        raise ConfigError(f"entry {entry_id} was decided by someone else meanwhile")
    return found
