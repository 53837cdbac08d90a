"""The bot's HTTP side: one-click unsubscribe (RFC 8058) and a health check.

Served by ``briefing run`` on ``BRIEFING_HTTP_HOST:BRIEFING_HTTP_PORT``; put it behind
``BRIEFING_PUBLIC_URL`` (an https reverse proxy) for the links in emails to work. Every
response carries the security headers, and every request is held to ``ServerLimits``
(``bot.web.hardening``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from sqlalchemy import text

from bot.digest.render import DigestRenderer
from bot.redact import mask_target
from bot.store import subscriptions as subs
from bot.store.database import Database
from bot.web.hardening import (
    SECURITY_HEADERS,
    HardenedRunner,
    ServerLimits,
    body_limits,
    security_headers,
)

__all__ = ["SECURITY_HEADERS", "ServerLimits", "build_app", "start_http"]

log = logging.getLogger("briefing.web")
DB = web.AppKey("db", Database)
Clock = Callable[[], datetime]
Page = Callable[..., str]
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
PAGE: web.AppKey[Page] = web.AppKey("page")
LIMITS = web.AppKey("limits", ServerLimits)
HEALTH_TIMEOUT = 5.0
"""Seconds the database has to answer a health check before it counts as down."""
PRIVATE = {"Cache-Control": "no-store"}


def build_app(
    db: Database,
    *,
    clock: Callable[[], datetime],
    renderer: DigestRenderer,
    limits: ServerLimits | None = None,
) -> web.Application:
    """The web application, bound to a database; pages come from ``renderer``'s templates.
    ``limits`` (the defaults if not given) bound what a client may send."""
    limits = limits or ServerLimits()
    app = web.Application(
        client_max_size=limits.max_body, middlewares=[security_headers, body_limits(limits)]
    )
    app[LIMITS] = limits
    app[DB] = db
    app[CLOCK] = clock
    app[PAGE] = lambda **values: renderer.page("unsubscribe.html.j2", **values)
    app.router.add_get("/healthz", health)
    app.router.add_get("/unsubscribe/{token}", confirm)
    app.router.add_post("/unsubscribe/{token}", unsubscribe)
    return app


async def health(request: web.Request) -> web.Response:
    """``{"status": "ok"}``, or ``{"status": "error"}`` with 503 when the database does not
    answer; why goes to the log (one line), never to the client."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            async with request.app[DB].engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # whatever the driver raises, the check says "error"
        log.warning("health check failed: the database did not answer: %s", _one_line(exc))
        return web.json_response({"status": "error"}, status=503, headers=PRIVATE)
    return web.json_response({"status": "ok"}, headers=PRIVATE)


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (SQLAlchemy adds lines of background)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {HEALTH_TIMEOUT:g} s"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else 'no message'}"


async def _find(request: web.Request) -> subs.Subscription | None:
    return await subs.by_token(request.app[DB], request.match_info["token"])


def _page(request: web.Request, status: int, **values: object) -> web.Response:
    html = request.app[PAGE](**{"locale": "en", "address": "", **values})
    return web.Response(
        status=status,
        text=html,
        content_type="text/html",
        charset="utf-8",
        headers={**PRIVATE, "X-Robots-Tag": "noindex"},
    )


async def confirm(request: web.Request) -> web.Response:
    """A page with a button: a GET never unsubscribes (link scanners follow links)."""
    sub = await _find(request)
    if sub is None:
        return _page(request, 404, state="unknown")
    state = "done" if sub.status == subs.REMOVED else "confirm"
    return _page(request, 200, state=state, address=mask_target(sub.address), locale=sub.locale)


async def unsubscribe(request: web.Request) -> web.Response:
    """RFC 8058 one-click (``List-Unsubscribe=One-Click``) or the confirmation form."""
    sub = await _find(request)
    if sub is None:
        return _page(request, 404, state="unknown")
    if sub.status != subs.REMOVED:
        await subs.set_status(
            request.app[DB],
            sub.id,
            subs.REMOVED,
            now=request.app[CLOCK](),
            reason="unsubscribed by the reader",
        )
        log.info("subscription %s unsubscribed by the reader", sub.id)
    return _page(request, 200, state="done", address=mask_target(sub.address), locale=sub.locale)


async def start_http(app: web.Application, *, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` (0: a free port) under the app's ``ServerLimits``;
    raise ``OSError`` if the address cannot be bound."""
    runner = HardenedRunner(app, limits=app[LIMITS], access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("HTTP on http://%s:%d (unsubscribe links, /healthz)", host, bound)
    return runner
