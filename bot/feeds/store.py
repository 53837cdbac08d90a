"""Feed poll state and feed entries in the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.digest.model import NewsView
from bot.feeds.dedupe import key
from bot.store.database import Database
from bot.store.tables import feed_entries, feed_polls


class EntryStatus(StrEnum):
    PENDING = "pending"  # from a review feed, waiting for an editor
    ACCEPTED = "accepted"  # accepted by an editor: a report in digests
    PUBLISHED = "published"  # from an auto feed: a report in digests
    REJECTED = "rejected"
    UNMATCHED = "unmatched"  # no topic's keywords: counted and listed, not filed
    DUPLICATE = "duplicate"  # the same story as an entry taken before


REPORTED = (EntryStatus.ACCEPTED, EntryStatus.PUBLISHED)


@dataclass(frozen=True)
class PollState:
    """What the database knows of a feed's polls."""

    url: str
    name: str
    etag: str | None
    last_modified: str | None
    polled_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failures: int
    next_poll_at: datetime | None
    taken: int
    unmatched: int
    duplicates: int


@dataclass(frozen=True)
class StoredEntry:
    id: int
    feed_name: str
    feed_url: str
    title: str
    summary: str
    link: str | None
    language: str
    topic: str | None
    status: str
    importance: int
    published_at: datetime | None
    fetched_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None


async def poll_states(db: Database) -> dict[str, PollState]:
    """Every feed's poll state, by URL."""
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(feed_polls))).mappings().all()
    return {row["url"]: _poll_state(row) for row in rows}


async def poll_state(db: Database, url: str) -> PollState | None:
    async with db.engine.connect() as conn:
        query = select(feed_polls).where(feed_polls.c.url_key == key(url))
        row = (await conn.execute(query)).mappings().one_or_none()
    return _poll_state(row) if row is not None else None


def _poll_state(row: Any) -> PollState:
    return PollState(**{name: row[name] for name in PollState.__dataclass_fields__})


async def save_poll(conn: AsyncConnection, url: str, name: str, **values: Any) -> None:
    """Create or update a feed's poll state within the caller's transaction; the counters
    ``taken``, ``unmatched`` and ``duplicates`` given are added to the stored ones."""
    url_key = key(url)
    counters = {c: values.pop(c, 0) for c in ("taken", "unmatched", "duplicates")}
    found = (
        await conn.execute(select(feed_polls.c.id).where(feed_polls.c.url_key == url_key))
    ).scalar_one_or_none()
    if found is None:
        await conn.execute(
            feed_polls.insert().values(
                url_key=url_key, url=url, name=name, **{"failures": 0, **counters, **values}
            )
        )
        return
    increments = {c: getattr(feed_polls.c, c) + n for c, n in counters.items()}
    await conn.execute(
        feed_polls.update()
        .where(feed_polls.c.id == found)
        .values(name=name, **increments, **values)
    )


async def seen_keys(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, str]:
    """Of these GUID and link keys, those already stored, with the feed that brought them."""
    found: dict[str, str] = {}
    wanted = [k for k in keys if k]
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(feed_entries.c.guid_key, feed_entries.c.link_key, feed_entries.c.feed_url)
        query = query.where(
            or_(feed_entries.c.guid_key.in_(chunk), feed_entries.c.link_key.in_(chunk))
        )
        for guid_key, link_key, feed_url in (await conn.execute(query)).all():
            for k in (guid_key, link_key):
                if k in chunk:
                    found[k] = feed_url
    return found


async def recent_titles(
    conn: AsyncConnection, *, since: datetime, other_than: str
) -> list[tuple[str, datetime, str]]:
    """(title, time, feed name) of entries other feeds brought since ``since``."""
    when = func.coalesce(feed_entries.c.published_at, feed_entries.c.fetched_at)
    query = select(feed_entries.c.title, when.label("when"), feed_entries.c.feed_name).where(
        feed_entries.c.feed_url != other_than,
        feed_entries.c.fetched_at >= since,
        feed_entries.c.status != EntryStatus.DUPLICATE,
    )
    return [(t, w, n) for t, w, n in (await conn.execute(query)).all()]


async def add_entries(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(feed_entries.insert(), list(rows))


async def entries(db: Database, *, statuses: Sequence[str], limit: int = 1000) -> list[StoredEntry]:
    """Stored entries with these statuses, oldest first."""
    query = (
        select(feed_entries)
        .where(feed_entries.c.status.in_(list(statuses)))
        .order_by(feed_entries.c.id)
        .limit(limit)
    )
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [_entry(row) for row in rows]


async def entry(db: Database, entry_id: int) -> StoredEntry | None:
    async with db.engine.connect() as conn:
        query = select(feed_entries).where(feed_entries.c.id == entry_id)
        row = (await conn.execute(query)).mappings().one_or_none()
    return _entry(row) if row is not None else None


def _entry(row: Any) -> StoredEntry:
    return StoredEntry(**{name: row[name] for name in StoredEntry.__dataclass_fields__})


async def decide(
    db: Database,
    entry_id: int,
    *,
    expected: Sequence[str],
    status: EntryStatus,
    now: datetime,
    by: str,
    topic: str | None = None,
    importance: int | None = None,
    reason: str | None = None,
) -> bool:
    """Move an entry from one of ``expected`` statuses to ``status``; False if it was not
    in one of them any more (another editor decided first)."""
    values: dict[str, Any] = {"status": status, "decided_at": now, "decided_by": by}
    if topic is not None:
        values["topic"] = topic
    if importance is not None:
        values["importance"] = importance
    if reason is not None:
        values["reason"] = reason
    async with db.engine.begin() as conn:
        result = await conn.execute(
            feed_entries.update()
            .where(feed_entries.c.id == entry_id, feed_entries.c.status.in_(list(expected)))
            .values(**values)
        )
    return bool(result.rowcount)


async def reports(db: Database, *, start: datetime, end: datetime) -> list[NewsView]:
    """Accepted and published reports filed in ``[start, end)``, as digests show them."""
    query = (
        select(feed_entries)
        .where(
            feed_entries.c.status.in_(list(REPORTED)),
            feed_entries.c.decided_at >= start,
            feed_entries.c.decided_at < end,
            feed_entries.c.topic.is_not(None),
        )
        .order_by(feed_entries.c.decided_at, feed_entries.c.id)
    )
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        NewsView(
            id=row["id"],
            topic=row["topic"],
            title=row["title"],
            summary=row["summary"],
            language=row["language"],
            source=row["feed_name"],
            url=row["link"],
            published=row["published_at"],
            recorded=row["decided_at"],
        )
        for row in rows
    ]
