"""Real databases for tests: a SQLite file and a fresh PostgreSQL database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from bot.store.database import Database

PG_ADMIN = os.environ.get("BRIEFING_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def pg_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}"


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database; dropped afterwards."""
    name = f"briefing_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            raise  # in CI the PostgreSQL half of the suite must run
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN} ({exc}); set BRIEFING_TEST_POSTGRES")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield pg_url(name)
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def database_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'briefing.db'}"
    else:
        async with postgres_database() as url:
            yield url


@asynccontextmanager
async def open_db(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    async with database_url(kind, tmp_path) as url:
        db = await Database.open(url)
        try:
            yield db
        finally:
            await db.close()
