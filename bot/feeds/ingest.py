"""Poll one feed: fetch, parse, drop what was seen or is a duplicate, file each new entry
under its topic, and record it all in one transaction (a failed poll writes only its error)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.feeds import store
from bot.feeds.config import FeedConfig
from bot.feeds.dedupe import TITLE_WINDOW, canonical_link, key, same_title
from bot.feeds.fetch import FeedError, fetch
from bot.feeds.parse import Entry, parse
from bot.feeds.store import EntryStatus
from bot.feeds.topics import TopicRules
from bot.redact import mask_url
from bot.store.database import Database

log = logging.getLogger("briefing.feeds")
MAX_BACKOFF = timedelta(hours=24)
AUTO_EDITOR = "feed (publish: auto)"


@dataclass
class PollResult:
    """What one poll of one feed did."""

    feed: str
    url: str
    filed: list[str] = field(default_factory=list)  # titles filed under a topic
    unmatched: list[str] = field(default_factory=list)  # titles matching no topic
    duplicates: list[str] = field(default_factory=list)  # titles another feed brought
    seen: int = 0  # entries taken from this feed before
    not_modified: bool = False
    error: str | None = None


def next_poll(feed: FeedConfig, *, failures: int, now: datetime) -> datetime:
    """When to poll again: after the feed's interval, or after a failure twice as long for
    each failure in a row, never more than a day, with a little jitter."""
    delay = feed.interval if failures == 0 else min(feed.interval * 2**failures, MAX_BACKOFF)
    return now + delay * random.uniform(0.95, 1.0)  # noqa: S311 (jitter, not a secret)


async def poll(
    db: Database,
    feed: FeedConfig,
    rules: TopicRules,
    *,
    now: datetime,
    filing: asyncio.Lock | None = None,
) -> PollResult:
    """Poll ``feed`` once and record the outcome; never raises for a feed's own fault (the
    error is logged, recorded as the feed's last error and returned). Feeds polled together
    share ``filing``, so that each sees what the others filed (duplicates across feeds)."""
    result = PollResult(feed=feed.name, url=feed.url)
    before = await store.poll_state(db, feed.url)
    failures = before.failures if before else 0
    try:
        fetched = await fetch(
            feed,
            etag=before.etag if before else None,
            last_modified=before.last_modified if before else None,
        )
        found = (
            [] if fetched.body is None else parse(fetched.body, content_type=fetched.content_type)
        )
    except FeedError as exc:
        result.error = str(exc)
        log.warning("feed %r (%s): %s", feed.name, mask_url(feed.url), result.error)
    except Exception as exc:  # a library's surprise must not stop the other feeds
        log.exception("feed %r (%s): unexpected error", feed.name, mask_url(feed.url))
        result.error = f"unexpected error: {type(exc).__name__}: {exc}"
    if result.error is not None:
        async with db.engine.begin() as conn:
            await store.save_poll(
                conn,
                feed.url,
                feed.name,
                polled_at=now,
                last_error=result.error,
                last_error_at=now,
                failures=failures + 1,
                next_poll_at=next_poll(feed, failures=failures + 1, now=now),
            )
        return result
    result.not_modified = fetched.body is None
    async with filing or contextlib.nullcontext(), db.engine.begin() as conn:
        rows = await _file(conn, feed, rules, found, result, now=now)
        await store.add_entries(conn, rows)
        validators: dict[str, Any] = {}
        if fetched.body is not None:
            validators = {"etag": fetched.etag, "last_modified": fetched.last_modified}
        await store.save_poll(
            conn,
            feed.url,
            feed.name,
            polled_at=now,
            last_success_at=now,
            failures=0,
            next_poll_at=next_poll(feed, failures=0, now=now),
            taken=len(result.filed),
            unmatched=len(result.unmatched),
            duplicates=len(result.duplicates),
            **validators,
        )
    log.info(
        "feed %r: %s",
        feed.name,
        "not modified"
        if result.not_modified
        else f"{len(result.filed)} filed, {len(result.unmatched)} matching no topic, "
        f"{len(result.duplicates)} duplicate(s), {result.seen} seen before",
    )
    return result


async def _file(
    conn: AsyncConnection,
    feed: FeedConfig,
    rules: TopicRules,
    found: list[Entry],
    result: PollResult,
    *,
    now: datetime,
) -> list[dict[str, Any]]:
    """The rows to store for ``found``, each with its status; ``result`` counts them."""
    links = {id(e): canonical_link(e.link) if e.link else None for e in found}
    keys = [k for e in found for k in (key(e.guid), key(links[id(e)])) if k]
    seen = await store.seen_keys(conn, keys)
    earliest = min((e.published or now for e in found), default=now)
    titles = await store.recent_titles(
        conn, since=min(earliest, now) - TITLE_WINDOW * 2, other_than=feed.url
    )
    rows: list[dict[str, Any]] = []
    taken_keys: set[str] = set()
    for entry in found:
        guid_key, link_key = key(entry.guid), key(links[id(entry)])
        own = [k for k in (guid_key, link_key) if k]
        if not entry.title:
            continue
        if any(seen.get(k) == feed.url for k in own):
            result.seen += 1
            continue
        if any(k in taken_keys for k in own):
            continue  # the same entry twice in one body
        taken_keys.update(own)
        when = entry.published or now
        status = EntryStatus.PUBLISHED if feed.publish == "auto" else EntryStatus.PENDING
        if any(k in seen for k in own) or any(
            abs(when - other_when) <= TITLE_WINDOW and same_title(entry.title, other)
            for other, other_when, _ in titles
        ):
            status, topic = EntryStatus.DUPLICATE, None
            result.duplicates.append(entry.title)
        else:
            topic = rules.match(f"{entry.title}\n{entry.summary}", allowed=feed.topics)
            if topic is None:
                status = EntryStatus.UNMATCHED
                result.unmatched.append(entry.title)
            else:
                result.filed.append(entry.title)
                titles.append((entry.title, when, feed.name))
        published = status is EntryStatus.PUBLISHED
        rows.append(
            {
                "feed_url": feed.url,
                "feed_name": feed.name,
                "guid_key": guid_key,
                "link_key": link_key,
                "guid": entry.guid,
                "link": links[id(entry)],
                "title": entry.title,
                "summary": entry.summary,
                "language": feed.language,
                "published_at": entry.published,
                "fetched_at": now,
                "topic": topic,
                "status": status,
                "importance": 2,
                "decided_at": now if published else None,
                "decided_by": AUTO_EDITOR if published else None,
                "reason": None,
            }
        )
    return rows
