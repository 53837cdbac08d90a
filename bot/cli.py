"""The ``briefing`` command line."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from bot.digest import DigestRenderer, ReaderOptions, Window, compose
from bot.errors import BriefingError, ConfigError, StateError
from bot.settings import get_settings
from bot.state import State, load_state
from bot.state.model import check_timezone

app = typer.Typer(
    help="Briefing bot: a sourced daily digest of the US–Russia–Ukraine peace talks.",
    no_args_is_help=True,
    add_completion=False,
)
state_app = typer.Typer(help="Inspect and validate the briefing state.", no_args_is_help=True)
app.add_typer(state_app, name="state")


def fail(message: str, *, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_topics(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    return tuple(t.strip() for t in value.split(",") if t.strip())


def parse_moment(value: str, *, option: str, timezone: str) -> datetime:
    """An ISO 8601 date or datetime; a naive one is read in ``timezone``."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 date or datetime (e.g. 2025-12-02T07:00)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=check_timezone(timezone))
    return moment


def load_current_state() -> State:
    settings = get_settings()
    return load_state(settings.state_dir, base=Path.cwd())


def renderer() -> DigestRenderer:
    return DigestRenderer(templates_dir=get_settings().templates_dir)


@state_app.command("validate")
def state_validate(
    path: Annotated[Path | None, typer.Argument(help="A state file or directory.")] = None,
) -> None:
    """Check the state; print every problem as file:line: message (exit 2 if any)."""
    target = path or get_settings().state_dir
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


@app.command()
def preview(
    topics: Annotated[
        str | None, typer.Option(help="Comma-separated topics (default: all).")
    ] = None,
    locale: Annotated[str | None, typer.Option(help="fr or en.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text, markdown, html or json.")] = "text",
    since: Annotated[str | None, typer.Option(help="Window start (ISO 8601).")] = None,
    now: Annotated[str | None, typer.Option(help="Fix the clock (ISO 8601).")] = None,
    timezone: Annotated[str | None, typer.Option(help="The reader's IANA timezone.")] = None,
) -> None:
    """Print the digest a reader would get now."""
    settings = get_settings()
    zone = timezone or settings.default_timezone
    options = ReaderOptions(
        topics=parse_topics(topics), locale=locale or settings.default_locale, timezone=zone
    )
    try:
        check_timezone(zone)
    except ValueError as exc:
        fail(f"--timezone: {exc}")
    end = parse_moment(now, option="--now", timezone=zone) if now else datetime.now(UTC)
    start = parse_moment(since, option="--since", timezone=zone) if since else None
    digest = compose(load_current_state(), options, Window.ending(end, since=start))
    sys.stdout.write(renderer().render(digest, fmt))


@app.command()
def run() -> None:
    """Run the bot: load and check the state, then print today's digest."""
    state = load_current_state()
    typer.echo(f"state loaded: revision {state.revision}, {len(state.developments)} developments")
    digest = compose(
        state, ReaderOptions(locale=get_settings().default_locale), Window.ending(datetime.now(UTC))
    )
    sys.stdout.write(renderer().render(digest, "text"))


def main() -> None:
    """Entry point: run the CLI, turning the bot's errors into a message and an exit code."""
    try:
        app()
    except StateError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        sys.exit(2)
    except BriefingError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
