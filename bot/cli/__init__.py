"""The ``briefing`` command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bot.cli import digest, send, subscriptions
from bot.cli.common import settings, setup_logging
from bot.errors import BriefingError, ConfigError, StateError

app = typer.Typer(
    help="Briefing bot: a sourced daily digest of the US–Russia–Ukraine peace talks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
app.add_typer(digest.state_app, name="state")
app.add_typer(subscriptions.subscribe_app, name="subscribe")
app.add_typer(subscriptions.subscriptions_app, name="subscriptions")
app.command()(digest.preview)
app.command()(digest.schema)
app.command()(send.send)
app.command()(subscriptions.deliveries)


@app.command()
def run(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Run the scheduler and workers until SIGTERM or Ctrl-C."""
    import asyncio

    from bot.service import serve

    setup_logging(verbose)
    asyncio.run(serve(settings()))


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
