"""What every command shares: settings, errors, parsing, output."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from bot.digest import DigestRenderer, ReaderOptions
from bot.errors import ConfigError
from bot.operations import values
from bot.operations.common import current_state
from bot.operations.deliveries import numeric
from bot.operations.values import check_name, check_zone, parse_moment, parse_topics
from bot.settings import Settings, get_settings
from bot.state import State
from bot.store.database import Database
from bot.store.tables import MAX_ID

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["check_name", "check_zone", "numeric", "parse_moment", "parse_topics"]
T = TypeVar("T")
_CONTROL = values.CONTROL


def fail(message: str) -> NoReturn:
    """Stop the command: a usage or option problem (exit 2)."""
    raise ConfigError(message)


def settings() -> Settings:
    return get_settings()


# ── Text that reaches a terminal ─────────────────────────────────────────────────────────


def escaped(text: str) -> str:
    """``text`` with control characters (ESC, CR, LF…) written as escapes, so that what a
    reader or a receiver typed cannot move the cursor, colour or split a line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def shown(value: object) -> str:
    """A value as a person reads it: yes/no, "—" for nothing, escapes for control characters."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(shown(v) for v in value)
    return escaped(str(value))


def plural(count: int, singular: str, several: str | None = None) -> str:
    return f"{count} {singular if count == 1 else several or singular + 's'}"


# ── Options ──────────────────────────────────────────────────────────────────────────────


def id_check(what: str) -> Callable[[T], T]:
    """A typer callback refusing ids outside 1 to ``MAX_ID`` (the database's integers):
    ``--subscription 99999999999999999999999`` is a usage error, not a driver's overflow."""

    def check(value: T) -> T:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int) and not 1 <= item <= MAX_ID:
                raise typer.BadParameter(f"{item} is not {what} id (1 to {MAX_ID})")
        return value

    return check


check_ids = id_check("a subscription")


def not_empty(value: T) -> T:
    """A typer callback: an option given must have a value (``--timezone ''`` is refused
    rather than read as "the default")."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and not item.strip():
            raise typer.BadParameter("empty")
    return value


def reader_options(topics: str | None, locale: str | None, timezone: str | None) -> ReaderOptions:
    return values.reader_options(settings(), topics, locale, timezone)


def load_current_state() -> State:
    return current_state(settings())


def with_stored(
    work: Callable[[Database | None], Coroutine[Any, Any, T]], *, needed: bool = False
) -> T:
    """Run ``work`` on the database (what the bot sends from), or on None while there is
    no database yet (a SQLite file not made) unless it is ``needed``, so that a preview or
    a one-off send creates nothing."""
    from bot.store.database import database_file

    path = database_file(settings().database_url)
    if path is not None and not path.is_file() and not needed:
        return asyncio.run(work(None))
    return with_database(work)


def renderer() -> DigestRenderer:
    return DigestRenderer(templates_dir=settings().templates_dir)


# ── Output ───────────────────────────────────────────────────────────────────────────────


def to_json(value: object) -> object:
    """``json.dumps``'s fallback: timestamps as ISO 8601, anything else as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def emit(data: Any, *, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=to_json) if as_json else text)


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
    """A plain text table, every cell on one line with control characters escaped."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    grid = Table(*headers, box=None, pad_edge=False, show_edge=False)
    for row in rows:
        grid.add_row(*(Text("" if cell is None else escaped(str(cell))) for cell in row))
    buffer = io.StringIO()
    Console(file=buffer, width=100_000, color_system=None).print(grid)  # no wrapping
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip().splitlines())


# ── Logs ─────────────────────────────────────────────────────────────────────────────────


@cache
def err_console() -> Console:
    """The one console on stderr: log lines and progress bars go through it, so log lines
    are printed above a progress bar instead of through it."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


class OneLineFormatter(logging.Formatter):
    """One line per record: line breaks and other control characters in the message (a
    receiver's answer, a reader's name) are escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escaped(record.message)
        return super().formatMessage(record)


class ConsoleHandler(logging.Handler):
    """Log records printed through ``err_console()``, never wrapped."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            err_console().print(
                self.format(record), markup=False, highlight=False, emoji=False, soft_wrap=True
            )
        except Exception:  # logging must never raise
            self.handleError(record)


def setup_logging(verbose: bool = False, *, level: int = logging.INFO) -> None:
    handler = ConsoleHandler()
    handler.setFormatter(
        OneLineFormatter("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z")
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, ConsoleHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else level)
    for noisy in ("apscheduler", "alembic", "aiosmtplib", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
