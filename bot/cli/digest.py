"""``briefing preview`` and ``briefing schema``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import (
    check_ids,
    fail,
    load_state_files,
    not_empty,
    parse_moment,
    reader_options,
    renderer,
    settings,
    stored_state,
    with_database,
)
from bot.cli.subscriptions import find
from bot.delivery import render_message
from bot.digest import Window, compose
from bot.digest.render import FORMATS, JSON_FORMAT
from bot.outputs import make_context, output_classes
from bot.outputs.api import ApiOutput
from bot.outputs.webhooks import WebhookOutput
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database

CHAT = "chat"  # chat dialects (this template) are previewed as the outputs that post them
PAYLOADS = (WebhookOutput, ApiOutput)  # outputs whose payloads a preview prints


def preview_formats() -> list[str]:
    """What ``preview --format`` accepts: the renderer's document formats and every
    registered webhook or chat-platform output (whose payloads are printed)."""
    webhooks = sorted(n for n, cls in output_classes().items() if issubclass(cls, PAYLOADS))
    chat_template = FORMATS[CHAT]
    documents = [f for f in (*FORMATS, JSON_FORMAT) if FORMATS.get(f) != chat_template]
    return [*documents, *webhooks]


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
            help="text, markdown, html or json, or a webhook output (discord, generic, "
            "mattermost, slack, teams…) for the payloads it would post.",
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
    known = preview_formats()
    if fmt not in known and fmt not in FORMATS:  # a chat dialect by name still renders
        fail(f"--format: unknown format {fmt!r} (known: {', '.join(known)})")
    if subscription is not None:

        async def lookup(db: Database) -> tuple[subs.Subscription, datetime | None]:
            found = await find(db, subscription)
            return found, (await outbox.last_windows(db, [found.id])).get(found.id)

        sub, last = with_database(lookup)
        topics = topics or (",".join(sub.topics) if sub.topics else None)
        locale, timezone = locale or sub.locale, timezone or sub.timezone
        if since is None and last is not None:
            since = last.isoformat()
    options = reader_options(topics, locale, timezone)
    end = parse_moment(now, option="--now", timezone=options.timezone)
    start = parse_moment(since, option="--since", timezone=options.timezone) if since else None
    state = load_state_files(files) if files is not None else stored_state()
    digest = compose(state, options, Window.ending(end, since=start))
    output_cls = output_classes().get(fmt)
    if output_cls is not None and issubclass(output_cls, PAYLOADS):
        output = output_cls(make_context(settings()))
        payloads = output.payloads(render_message(renderer(), digest, output_cls))
        sys.stdout.write(json.dumps(payloads, ensure_ascii=False, indent=2) + "\n")
        return
    sys.stdout.write(renderer().render(digest, fmt))


def schema() -> None:
    """Print the JSON Schema of the generic webhook body.

    The body holds the Digest's JSON form and its renders.
    """
    from bot.digest.model import webhook_schema

    sys.stdout.write(json.dumps(webhook_schema(), indent=2) + "\n")
