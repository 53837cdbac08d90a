"""The database: URL normalisation, the async engine, migrations at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.errors import ConfigError

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


def async_url(url: str) -> URL:
    """Accept plain ``sqlite:///…`` and ``postgresql://…`` URLs as well as async ones."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"BRIEFING_DATABASE_URL is not a database URL: {exc}") from exc
    driver = _ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername)
    if not driver.startswith(("sqlite", "postgresql")):
        raise ConfigError(f"unsupported database {parsed.drivername!r} (use SQLite or PostgreSQL)")
    return parsed.set(drivername=driver)


class Database:
    """One async engine for the process, with the schema migrated to the latest version."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Database:
        """Connect (creating a SQLite file's folder), then apply pending migrations."""
        parsed = async_url(url)
        options: dict[str, Any] = {}
        if parsed.drivername.startswith("sqlite"):
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        engine = create_async_engine(parsed, **options)
        if parsed.drivername.startswith("sqlite"):
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        database = cls(engine)
        if migrate:
            try:
                await database.migrate()
            except (SQLAlchemyError, OSError) as exc:
                await engine.dispose()
                shown = parsed.render_as_string(hide_password=True)
                raise ConfigError(f"cannot open the database {shown}: {exc}") from exc
        return database

    async def migrate(self) -> None:
        """Apply pending migrations (Alembic is only loaded when there are some)."""
        async with self.engine.begin() as connection:
            if await connection.run_sync(_current_revision) != HEAD:
                await connection.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()


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
