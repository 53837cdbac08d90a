"""``briefing preview`` and ``briefing schema``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import check_ids, not_empty, renderer, settings, with_stored
from bot.operations import preview as preview_ops
from bot.store.database import Database


def preview(
    topics: Annotated[
        str | None,
        typer.Option(
            metavar="A,B", help="Comma-separated topics (default: all).", callback=not_empty
        ),
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option(
            metavar="fr|en", help="Language (default: BRIEFING_DEFAULT_LOCALE).", callback=not_empty
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="text, markdown, html or json, or an output (slack, telegram, matrix, "
            "apprise…; see 'briefing outputs') for the payloads it would send.",
            callback=not_empty,
        ),
    ] = "text",
    since: Annotated[
        str | None,
        typer.Option(
            metavar="ISO",
            help="Window start (default: 24 hours before --now, or the subscription's last "
            "digest).",
            callback=not_empty,
        ),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(metavar="ISO", help="Fix the clock (default: now).", callback=not_empty),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            metavar="IANA",
            help="The reader's timezone (default: BRIEFING_DEFAULT_TIMEZONE).",
            callback=not_empty,
        ),
    ] = None,
    subscription: Annotated[
        int | None,
        typer.Option(
            metavar="ID",
            help="Preview what this subscription would get: its options and window "
            "(default: none, the options given).",
            callback=check_ids,
        ),
    ] = None,
    files: Annotated[
        Path | None,
        typer.Option(
            "--files",
            metavar="PATH",
            help="Preview the state files at PATH, to check an edit before 'state import' "
            "(default: the stored state, what the bot sends).",
        ),
    ] = None,
) -> None:
    """Print the digest a reader would get now, from the stored state (what the bot sends).

    Chat formats print the payloads that would be posted.
    """
    reader = preview_ops.Reader(
        topics=topics, locale=locale, timezone=timezone, since=since, now=now
    )
    preview_ops.check_format(fmt)

    async def shown(db: Database | None) -> str:
        chosen = reader
        if subscription is not None and db is not None:
            chosen = await preview_ops.for_subscription(db, subscription, reader)
        found = await preview_ops.render_preview(
            db, settings(), renderer(), chosen, fmt, files=files
        )
        return found.body

    sys.stdout.write(with_stored(shown, needed=subscription is not None))


def schema() -> None:
    """Print the JSON Schema of the generic webhook body.

    The body holds the Digest's JSON form and its renders.
    """
    from bot.digest.model import webhook_schema

    sys.stdout.write(json.dumps(webhook_schema(), indent=2) + "\n")
