"""``briefing preview`` and ``briefing state …``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import (
    emit,
    fail,
    load_current_state,
    parse_moment,
    reader_options,
    renderer,
    settings,
    with_database,
)  # fmt: skip
from bot.delivery import render_message
from bot.digest import Window, compose
from bot.errors import StateError
from bot.outputs import make_context, output_class
from bot.outputs.webhooks import WebhookOutput
from bot.service import state_dir, utc_now
from bot.state import load_state
from bot.store import outbox, states
from bot.store import subscriptions as subs
from bot.store.database import Database

state_app = typer.Typer(
    help="Inspect, validate and import the briefing state.", no_args_is_help=True
)
WEBHOOK_PREVIEWS = ("slack", "discord", "teams", "mattermost")


def preview(
    topics: Annotated[
        str | None, typer.Option(help="Comma-separated topics (default: all).")
    ] = None,
    locale: Annotated[str | None, typer.Option(help="fr or en.")] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="text, markdown, html, json, slack, discord, teams or mattermost."
        ),
    ] = "text",
    since: Annotated[str | None, typer.Option(help="Window start (ISO 8601).")] = None,
    now: Annotated[str | None, typer.Option(help="Fix the clock (ISO 8601).")] = None,
    timezone: Annotated[str | None, typer.Option(help="The reader's IANA timezone.")] = None,
    subscription: Annotated[
        int | None, typer.Option(help="Preview what this subscription would get.")
    ] = None,
) -> None:
    """Print the digest a reader would get now (chat formats: the payloads to be posted)."""
    if subscription is not None:

        async def lookup(db: Database) -> tuple[subs.Subscription, datetime | None]:
            found = await subs.get(db, subscription)
            return found, (await outbox.last_windows(db, [found.id])).get(found.id)

        sub, last = with_database(lookup)
        topics = topics or (",".join(sub.topics) if sub.topics else None)
        locale, timezone = locale or sub.locale, timezone or sub.timezone
        if since is None and last is not None:
            since = last.isoformat()
    options = reader_options(topics, locale, timezone)
    end = parse_moment(now, option="--now", timezone=options.timezone)
    start = parse_moment(since, option="--since", timezone=options.timezone) if since else None
    digest = compose(load_current_state(), options, Window.ending(end, since=start))
    if fmt in WEBHOOK_PREVIEWS:
        output_cls = output_class(fmt)
        output = output_cls(make_context(settings()))
        if not isinstance(output, WebhookOutput):
            fail(f"--format {fmt}: not a webhook output")
        payloads = output.payloads(render_message(renderer(), digest, output_cls))
        sys.stdout.write(json.dumps(payloads, ensure_ascii=False, indent=2) + "\n")
        return
    sys.stdout.write(renderer().render(digest, fmt))


def schema() -> None:
    """Print the JSON Schema of the generic webhook body (the Digest's JSON form and renders)."""
    from bot.digest.model import webhook_schema

    sys.stdout.write(json.dumps(webhook_schema(), indent=2) + "\n")


@state_app.command("validate")
def state_validate(
    path: Annotated[Path | None, typer.Argument(help="A state file or directory.")] = None,
) -> None:
    """Check the state; print every problem as file:line: message (exit 2 if any)."""
    target = path or state_dir(settings())
    try:
        state = load_state(target)
    except StateError as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        typer.echo(f"{len(exc.problems)} problem(s) found in {target}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{target}: valid — {len(state.topics)} topics, {len(state.actors)} actors, "
        f"{len(state.sources)} sources, {len(state.developments)} developments "
        f"(revision {state.revision})"
    )


@state_app.command("import")
def state_import(
    path: Annotated[Path | None, typer.Argument(help="A state file or directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Store the state files as the current revision (a no-op if nothing changed)."""
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
