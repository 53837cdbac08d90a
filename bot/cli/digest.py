"""``briefing preview`` and ``briefing state …``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import (
    check_ids,
    emit,
    not_empty,
    plural,
    renderer,
    settings,
    with_database,
)
from bot.errors import StateError
from bot.operations import preview as preview_ops
from bot.service import state_dir, utc_now
from bot.state import load_state
from bot.store import states

state_app = typer.Typer(
    help="Inspect, validate and import the briefing state.", no_args_is_help=True
)


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
    reader = preview_ops.Reader(
        topics=topics, locale=locale, timezone=timezone, since=since, now=now
    )
    if subscription is not None:
        preview_ops.check_format(fmt)
        chosen = subscription
        reader = with_database(lambda db: preview_ops.for_subscription(db, chosen, reader))
    sys.stdout.write(preview_ops.render_preview(settings(), renderer(), reader, fmt).body)


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
