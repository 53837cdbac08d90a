"""``briefing feeds``, ``briefing ingest`` and ``briefing review …``: thin over
``bot.feeds.operations``."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated, Any

import typer

from bot.cli.common import (
    emit,
    fail,
    id_check,
    not_empty,
    plural,
    settings,
    setup_logging,
    table,
    with_database,
)
from bot.feeds import operations as ops
from bot.feeds.ingest import PollResult
from bot.feeds.store import StoredEntry
from bot.redact import mask_url
from bot.service import utc_now
from bot.store.database import Database

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
EntryId = Annotated[
    int,
    typer.Argument(
        metavar="ID", help="The entry's id (briefing review list).", callback=id_check("an entry")
    ),
]
By = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="Who decides (default: BRIEFING_EDITOR, else the user).",
        callback=not_empty,
    ),
]
review_app = typer.Typer(help="Review entries from news feeds.", no_args_is_help=True)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "never"


def feeds(as_json: AsJson = False) -> None:
    """List the news feeds of feeds.yaml: last success, last error, entries taken."""

    async def work(db: Database) -> list[ops.FeedListing]:
        return await ops.list_feeds(db, await ops.load_feed_set(db, settings()))

    listing = with_database(work)
    rows = [
        [f.name, mask_url(f.url), f.language, f.publish, _when(f.last_success),
         f"{_when(f.last_error_at)}: {f.last_error}" if f.last_error else "—", f.taken, f.unmatched,
         f.duplicates]
        for f in listing
    ]  # fmt: skip
    headers = ["name", "url", "lang", "publish", "last success", "last error", "taken",
               "no topic", "duplicates"]  # fmt: skip
    text = table(headers, rows) if rows else f"no feeds enabled in {ops.feeds_path(settings())}"
    emit([asdict(f) for f in listing], as_json=as_json, text=text)


def ingest(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="URL|PATH",
            help="A feed of feeds.yaml (its URL or name), or another URL or file, read once.",
        ),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every feed of feeds.yaml.")] = False,
    name: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Source name of a feed not in feeds.yaml (default: its URL or file).",
        ),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(
            metavar="en|fr",
            help="Language of a feed not in feeds.yaml (default: none; required for one).",
        ),
    ] = None,
    as_json: AsJson = False,
) -> int:
    """Fetch feeds once: new entries are filed under their topic.

    Exit 1 if a feed could not be read.
    """
    if (target is None) == (not every):
        fail("give a feed (URL, name or file) or --all")
    setup_logging(level=logging.WARNING)

    async def work(db: Database) -> list[PollResult]:
        feed_set = await ops.load_feed_set(db, settings())
        if every:
            targets = feed_set.feeds
        else:
            assert target is not None
            found = feed_set.find(target)
            targets = [found or ops.adhoc_feed(target, name=name, language=language)]
        return await ops.ingest(db, feed_set, targets, now=utc_now())

    results = with_database(work)
    lines = []
    for r in results:
        if r.error:
            lines.append(f"{r.feed}: error: {r.error}")
            continue
        if r.not_modified:
            lines.append(f"{r.feed}: not modified")
            continue
        lines.append(
            f"{r.feed}: {plural(len(r.filed), 'entry', 'entries')} filed, "
            f"{len(r.unmatched)} matching no topic, {len(r.duplicates)} duplicate(s), "
            f"{r.seen} seen before"
        )
        lines += [f"  no topic: {title}" for title in r.unmatched]
        lines += [f"  duplicate: {title}" for title in r.duplicates]
    emit(
        [asdict(r) for r in results],
        as_json=as_json,
        text="\n".join(lines) or "no feeds enabled",
    )
    return 1 if any(r.error for r in results) else 0


def _entry_view(e: StoredEntry) -> dict[str, Any]:
    return asdict(e)


@review_app.command("list")
def review_list(
    unmatched: Annotated[
        bool, typer.Option("--unmatched", help="Entries that matched no topic instead.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Entries from review feeds waiting for a decision, oldest first."""
    found = with_database(lambda db: ops.review_list(db, unmatched=unmatched))
    rows = [
        [e.id, e.feed_name, e.language, e.topic or "—", _when(e.published_at), e.title,
         e.link or "—"]
        for e in found
    ]  # fmt: skip
    text = (
        table(["id", "feed", "lang", "topic", "published", "title", "link"], rows)
        if rows
        else "nothing to review"
    )
    emit([_entry_view(e) for e in found], as_json=as_json, text=text)


@review_app.command("accept")
def review_accept(
    entry_id: EntryId,
    topic: Annotated[
        str | None,
        typer.Option(
            metavar="TOPIC",
            help="File it under this topic (default: the one its keywords chose).",
            callback=not_empty,
        ),
    ] = None,
    importance: Annotated[
        int | None, typer.Option(metavar="N", help="Importance 1 to 5 (default 2).")
    ] = None,
    by: By = None,
    as_json: AsJson = False,
) -> None:
    """Accept an entry: a report in digests from now on."""
    done = with_database(
        lambda db: ops.accept(
            db, entry_id, now=utc_now(), by=ops.editor(by), topic=topic, importance=importance
        )
    )
    emit(
        _entry_view(done),
        as_json=as_json,
        text=f"entry {done.id} accepted under {done.topic}: {done.title}",
    )


@review_app.command("reject")
def review_reject(
    entry_id: EntryId,
    because: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="Why, kept with the entry (default: no reason given)."),
    ] = None,
    by: By = None,
    as_json: AsJson = False,
) -> None:
    """Reject an entry: it never reaches a digest."""
    done = with_database(
        lambda db: ops.reject(db, entry_id, now=utc_now(), by=ops.editor(by), reason=because)
    )
    emit(_entry_view(done), as_json=as_json, text=f"entry {done.id} rejected: {done.title}")


def register(app: typer.Typer) -> None:
    app.command()(feeds)
    app.command()(ingest)
    app.add_typer(review_app, name="review")
