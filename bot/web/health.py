"""``/healthz``: whether the database answers and the scheduler ticks, telling the public
nothing more (why goes to the log, one line)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bot.web.context import Web

log = logging.getLogger("briefing.web")
router = APIRouter(include_in_schema=False)
HEALTH_TIMEOUT = 5.0
"""Seconds the database has to answer a health check before it counts as down."""
TICK_LATE = timedelta(seconds=60)
"""How long the scheduler may go without a tick before the bot counts as unhealthy."""
PRIVATE = {"Cache-Control": "no-store"}


@router.get("/healthz")
async def health(web: Web) -> JSONResponse:
    """``{"status": "ok"}``, or ``{"status": "error"}`` with 503 when the database does not
    answer or the scheduler has not ticked for ``TICK_LATE``."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            async with web.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # whatever the driver raises, the check says "error"
        log.warning("health check failed: the database did not answer: %s", _one_line(exc))
        return _answer(ok=False)
    beat = web.heartbeat
    if beat is not None and web.clock() - beat.last_or_start > TICK_LATE:
        log.warning(
            "health check failed: the scheduler has not ticked since %s",
            beat.last_or_start.isoformat(timespec="seconds"),
        )
        return _answer(ok=False)
    return _answer(ok=True)


def _answer(*, ok: bool) -> JSONResponse:
    return JSONResponse(
        {"status": "ok" if ok else "error"}, status_code=200 if ok else 503, headers=PRIVATE
    )


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (SQLAlchemy adds lines of background)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {HEALTH_TIMEOUT:g} s"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else 'no message'}"
