"""Serving the web application over real sockets on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from bot.digest import DigestRenderer
from bot.settings import Settings
from bot.store.database import Database
from bot.web import HttpServer, WebContext, build_app, start_http


def now() -> datetime:
    return datetime.now(UTC)


def web_for(db: Database, *, settings: Settings | None = None, **extra: Any) -> WebContext:
    return WebContext(
        db=db,
        settings=settings or Settings(home="/nonexistent-briefing-home"),
        clock=extra.pop("clock", now),
        renderer=DigestRenderer(),
        **extra,
    )


@asynccontextmanager
async def served(db: Database, **extra: Any) -> AsyncIterator[HttpServer]:
    server = await start_http(build_app(web_for(db, **extra)), host="127.0.0.1", port=0)
    try:
        yield server
    finally:
        await server.close()
