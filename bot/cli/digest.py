"""``briefing preview`` and ``briefing state …``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import (
    check_ids,
    emit,
    fail,
    load_current_state,
    not_empty,
    parse_moment,
    plural,
    reader_options,
    renderer,
    settings,
    with_database,
)
from bot.cli.subscriptions import find
from bot.delivery import render_message
from bot.digest import Window, compose
from bot.digest.model import NewsView
from bot.digest.render import FORMATS, JSON_FORMAT
from bot.errors import StateError
from bot.feeds import store as feed_store
from bot.outputs import make_context, output_classes
from bot.outputs.api import ApiOutput
from bot.outputs.webhooks import WebhookOutput
from bot.service import state_dir, utc_now
from bot.state import load_state
from bot.store import outbox, states
from bot.store import subscriptions as subs
from bot.store.database import Database, database_file

state_app = typer.Typer(
    help="Inspect, validate and import the briefing state.", no_args_is_help=True
)


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
) -> None:
    """Print the digest a reader would get now.

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
    window = Window.ending(end, since=start)
    digest = compose(load_current_state(), options, window, news=stored_news(window))
    output_cls = output_classes().get(fmt)
    if output_cls is not None and issubclass(output_cls, PAYLOADS):
        output = output_cls(make_context(settings()))
        payloads = output.payloads(render_message(renderer(), digest, output_cls))
        sys.stdout.write(json.dumps(payloads, ensure_ascii=False, indent=2) + "\n")
        return
    sys.stdout.write(renderer().render(digest, fmt))


def stored_news(window: Window) -> list[NewsView]:
    """The reports from news feeds filed in ``window`` (none before the database exists)."""
    path = database_file(settings().database_url)
    if path is not None and not path.exists():
        return []
    return with_database(lambda db: feed_store.reports(db, start=window.start, end=window.end))


def schema() -> None:
    """Print the JSON Schema of the generic webhook body.

    The body holds the Digest's JSON form and its renders.
    """
    from bot.digest.model import webhook_schema

    sys.stdout.write(json.dumps(webhook_schema(), indent=2) + "\n")


@state_app.command("validate")
def state_validate(
    path: Annotated[
        Path | None,
        typer.Argument(
            metavar="PATH",
            help="A state file or directory (default: BRIEFING_STATE_DIR or the shipped state).",
        ),
    ] = None,
) -> None:
    """Check the state files.

    Prints every problem as file:line: message, and exits 2 if there is any.
    """
    target = path or state_dir(settings())
    try:
        state = load_state(target)
    except StateError as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        typer.echo(f"{len(exc.problems)} problem(s) found in {target}", err=True)
        raise typer.Exit(2) from None
    counts = ", ".join(
        plural(len(items), name)
        for items, name in (
            (state.topics, "topic"),
            (state.actors, "actor"),
            (state.sources, "source"),
            (state.developments, "development"),
        )
    )
    typer.echo(f"{target}: valid — {counts} (revision {state.revision})")


@state_app.command("import")
def state_import(
    path: Annotated[
        Path | None,
        typer.Argument(
            metavar="PATH",
            help="A state file or directory (default: BRIEFING_STATE_DIR or the shipped state).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Store the state files as the current revision.

    A no-op if nothing changed; the running bot uses it from its next delivery on.
    """
    target = path or state_dir(settings())
    imported = with_database(lambda db: states.import_state(db, target, now=utc_now()))
    verb = (
        "imported as a new revision"
        if imported.created
        else "unchanged: already the current revision"
    )
    emit(
        {
            "revision": imported.revision,
            "created": imported.created,
            "path": str(target),
            "developments": len(imported.state.developments),
        },
        as_json=as_json,
        text=f"{target}: {verb} {imported.revision} ({len(imported.state.developments)} developments)",
    )
