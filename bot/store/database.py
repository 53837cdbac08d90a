"""The database: URL normalisation, the async engine, migrations at start."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.crypto import Keyring
from bot.errors import ConfigError

log = logging.getLogger("briefing.database")
MIGRATIONS = Path(__file__).with_name("migrations")
# Revision ids are the file name prefixes (0001_…, 0002_…): the newest file is the head.
HEAD = max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+psycopg_async",
    "postgresql+pg8000": "postgresql+asyncpg",
}
_SUPPORTED = ("sqlite+aiosqlite", "postgresql+asyncpg", "postgresql+psycopg_async")
_SUPPORTED_SHOWN = (
    "sqlite://, sqlite+aiosqlite://, postgresql://, postgresql+asyncpg:// or postgresql+psycopg://"
)


def async_url(url: str) -> URL:
    """Accept plain ``sqlite:///…`` and ``postgresql://…`` URLs as well as async ones."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"BRIEFING_DATABASE_URL is not a database URL: {exc}") from exc
    driver = _ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername)
    if not driver.startswith(("sqlite", "postgresql")):
        raise ConfigError(
            f"unsupported database {parsed.drivername!r} in BRIEFING_DATABASE_URL "
            f"(use SQLite or PostgreSQL: {_SUPPORTED_SHOWN})"
        )
    if driver not in _SUPPORTED:
        raise ConfigError(
            f"unsupported database driver {parsed.drivername!r} in BRIEFING_DATABASE_URL "
            f"(supported: {_SUPPORTED_SHOWN})"
        )
    return parsed.set(drivername=driver)


def database_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for other databases, in-memory SQLite and
    URI file names (or a URL that is not valid)."""
    try:
        parsed = async_url(url)
    except ConfigError:
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.query.get("uri"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def shown_url(url: str) -> str:
    """A database URL as it may be shown: password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


POOL_SIZE = 10
MAX_OVERFLOW = 10
"""Connections per process on PostgreSQL: at most POOL_SIZE + MAX_OVERFLOW at once."""


@dataclass
class Usage:
    """What the process asked of the database: SQL statements executed (besides BEGIN,
    COMMIT and ROLLBACK), transactions, connections opened, and the most connections in use
    at once (the pool's peak)."""

    statements: int = 0
    transactions: int = 0
    connections: int = 0
    in_use: int = 0
    peak_in_use: int = 0

    def watch(self, engine: AsyncEngine) -> None:
        """Count through the engine's and its pool's events."""
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "connect", self._connect)
        event.listen(sync, "checkout", self._checkout)
        event.listen(sync, "checkin", self._checkin)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _begin(self, *_: Any) -> None:
        self.transactions += 1

    def _connect(self, *_: Any) -> None:
        self.connections += 1

    def _checkout(self, *_: Any) -> None:
        self.in_use += 1
        self.peak_in_use = max(self.peak_in_use, self.in_use)

    def _checkin(self, *_: Any) -> None:
        self.in_use -= 1

    def __str__(self) -> str:
        return (
            f"{self.statements} SQL statements in {self.transactions} transactions, "
            f"{self.connections} connections opened, "
            f"at most {self.peak_in_use} in use at once"
        )


class Database:
    """One async engine for the process, with the schema migrated to the latest version,
    and the keys that seal what is secret in it (none: stored in the clear)."""

    def __init__(self, engine: AsyncEngine, *, keyring: Keyring | None = None) -> None:
        self.engine = engine
        self.keyring = keyring or Keyring()
        self.usage = Usage()
        self.usage.watch(engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, keyring: Keyring | None = None
    ) -> Database:
        """Connect (creating a SQLite file, readable by its owner only), then apply
        pending migrations."""
        parsed = async_url(url)
        shown = parsed.render_as_string(hide_password=True)
        options: dict[str, Any] = {}
        if parsed.drivername.startswith("sqlite"):
            if (path := database_file(url)) is not None:
                if not path.parent.is_dir():
                    raise ConfigError(
                        f"the database's directory {path.parent} does not exist or is not a "
                        f"directory (BRIEFING_DATABASE_URL={shown}): create it first"
                    )
                try:
                    _create_private(path)
                except OSError as exc:
                    raise ConfigError(
                        f"cannot create the database {parsed.database}: {exc.strerror or exc}"
                    ) from exc
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)
        try:
            engine = create_async_engine(parsed, **options)
        except (SQLAlchemyError, ImportError) as exc:
            raise ConfigError(f"cannot use the database {shown}: {_reason(exc)}") from exc
        if parsed.drivername.startswith("sqlite"):
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        database = cls(engine, keyring=keyring)
        if migrate:
            try:
                await database.migrate()
            except (SQLAlchemyError, OSError) as exc:
                await engine.dispose()
                raise ConfigError(f"cannot open the database {shown}: {_reason(exc)}") from exc
        return database

    async def migrate(self) -> None:
        """Apply pending migrations (Alembic is only loaded when there are some)."""
        async with self.engine.begin() as connection:
            if await connection.run_sync(_current_revision) != HEAD:
                await connection.run_sync(_upgrade)

    async def close(self) -> None:
        """Dispose of the engine, logging what the process asked of the database."""
        log.info("database use: %s", self.usage)
        await self.engine.dispose()


def _reason(exc: BaseException) -> str:
    """The driver's own message, first line only (SQLAlchemy wraps it and adds lines of
    background and SQL)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _create_private(path: Path) -> None:
    """Create a SQLite file readable by its owner only (0600) if it is missing; SQLite
    gives its journal and WAL files the mode of the database file."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(handle, 0o600)
    finally:
        os.close(handle)


def _current_revision(connection: Connection) -> str | None:
    from sqlalchemy import inspect

    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
