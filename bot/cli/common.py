"""What every command shares: settings, errors, parsing, output."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from bot.digest import DigestRenderer, ReaderOptions
from bot.settings import Settings, get_settings
from bot.state import State, load_state
from bot.state.model import check_timezone
from bot.store.database import Database

T = TypeVar("T")


def fail(message: str, *, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    return get_settings()


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        stream=sys.stderr,
    )
    for noisy in ("apscheduler", "alembic", "aiosmtplib", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def parse_topics(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    return tuple(t.strip() for t in value.split(",") if t.strip())


def check_zone(zone: str) -> str:
    try:
        check_timezone(zone)
    except ValueError as exc:
        fail(f"--timezone: {exc}")
    return zone


def parse_moment(value: str | None, *, option: str, timezone: str) -> datetime:
    """An ISO 8601 date or datetime (a naive one is read in ``timezone``); now if None."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 date or datetime (e.g. 2025-12-02T07:00)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=check_timezone(timezone))
    return moment


def reader_options(topics: str | None, locale: str | None, timezone: str | None) -> ReaderOptions:
    config = settings()
    return ReaderOptions(
        topics=parse_topics(topics),
        locale=locale or config.default_locale,
        timezone=check_zone(timezone or config.default_timezone),
    )


def load_current_state() -> State:
    from bot.service import state_dir

    return load_state(state_dir(settings()), base=Path.cwd())


def renderer() -> DigestRenderer:
    return DigestRenderer(templates_dir=settings().templates_dir)


def emit(data: Any, *, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str) if as_json else text)


def with_database(work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database (migrated, state imported at first use), run ``work``, close."""
    from bot.service import open_database

    async def run() -> T:
        db = await open_database(settings())
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table (rich when on a terminal)."""
    from rich.console import Console
    from rich.table import Table

    grid = Table(*headers, box=None, pad_edge=False, show_edge=False)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(grid)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip().splitlines())
