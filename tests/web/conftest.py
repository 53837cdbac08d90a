"""Serving the web application over real sockets on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bot.digest import DigestRenderer
from bot.settings import Settings
from bot.store.database import Database
from bot.web import HttpServer, WebContext, build_app, start_http
from tests.conftest import SEED_STATE


def now() -> datetime:
    return datetime.now(UTC)


TOKEN = "t0ken-for-the-api-tests"


def api_settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings of an API under test: the seed state, private targets allowed (receivers
    on 127.0.0.1), email written as files."""
    chosen: dict[str, Any] = {
        "home": tmp_path / "home",
        "state_dir": SEED_STATE,
        "mail_dir": tmp_path / "mail",
        "api_token": TOKEN,
        "allow_private_targets": True,
        "mail_from": "Briefing <briefing@example.org>",
    }
    return Settings(**{**chosen, **values})


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


@asynccontextmanager
async def api_client(
    db: Database, settings: Settings, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a served application (with the token unless ``headers`` say otherwise)."""
    auth = {"Authorization": f"Bearer {TOKEN}"} if headers is None else headers
    async with (
        served(db, settings=settings) as server,
        httpx.AsyncClient(base_url=server.url, headers=auth, timeout=30) as client,
    ):
        yield client
