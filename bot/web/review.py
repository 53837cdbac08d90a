"""News feeds and the review of their entries, under ``/api/v1`` (included in
``bot.web.api``'s router, behind its token): the operations of ``briefing feeds`` and
``briefing review list|accept|reject`` (``bot.feeds.operations``), called as the CLI calls
them. Feed URLs are masked, as in the CLI's listing."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Path, Query

from bot.feeds import operations as ops
from bot.feeds.operations import FeedListing
from bot.feeds.store import StoredEntry
from bot.redact import mask_url
from bot.web.context import Web
from bot.web.editing import author
from bot.web.models import MAX_ID, Acceptance, Rejection

router = APIRouter(tags=["feeds"])
EntryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The entry's id (GET /review).")]


def _shown(entry: StoredEntry) -> StoredEntry:
    return replace(entry, feed_url=mask_url(entry.feed_url))


@router.get("/feeds")
async def list_feeds(web: Web) -> list[FeedListing]:
    """The news feeds of feeds.yaml, as `briefing feeds`: last success, last error, entries
    taken, matching no topic, duplicates."""
    feeds = await ops.load_feed_set(web.db, web.settings)
    return [replace(f, url=mask_url(f.url)) for f in await ops.list_feeds(web.db, feeds)]


@router.get("/review")
async def list_review(
    web: Web,
    unmatched: Annotated[
        bool, Query(description="The entries that matched no topic instead.")
    ] = False,
) -> list[StoredEntry]:
    """Entries from review feeds waiting for a decision, oldest first (`briefing review
    list`)."""
    return [_shown(e) for e in await ops.review_list(web.db, unmatched=unmatched)]


@router.post("/review/{entry}/accept")
async def accept_entry(
    web: Web, entry: EntryId, acceptance: Acceptance | None = None
) -> StoredEntry:
    """Accept an entry: a report in digests from now on (one that matched no topic needs
    `topic`)."""
    chosen = acceptance or Acceptance()
    done = await ops.accept(
        web.db,
        entry,
        now=web.clock(),
        by=author(web, chosen.by),
        topic=chosen.topic,
        importance=chosen.importance,
    )
    return _shown(done)


@router.post("/review/{entry}/reject")
async def reject_entry(web: Web, entry: EntryId, rejection: Rejection | None = None) -> StoredEntry:
    """Reject an entry: it never reaches a digest."""
    chosen = rejection or Rejection()
    done = await ops.reject(
        web.db, entry, now=web.clock(), by=author(web, chosen.by), reason=chosen.because
    )
    return _shown(done)
