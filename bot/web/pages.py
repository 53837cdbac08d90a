"""The public pages: one-click unsubscribe (RFC 8058) and its confirmation page."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from bot.redact import mask_target
from bot.store import subscriptions as subs
from bot.web.context import Web, WebContext

log = logging.getLogger("briefing.web")
router = APIRouter(include_in_schema=False)
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _page(web: WebContext, status: int, **values: object) -> HTMLResponse:
    html = web.renderer.page("unsubscribe.html.j2", **{"locale": "en", "address": "", **values})
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


@router.get("/unsubscribe/{token}")
async def confirm(token: str, web: Web) -> HTMLResponse:
    """A page with a button: a GET never unsubscribes (link scanners follow links)."""
    sub = await subs.by_token(web.db, token)
    if sub is None:
        return _page(web, 404, state="unknown")
    state = "done" if sub.status == subs.REMOVED else "confirm"
    return _page(web, 200, state=state, address=mask_target(sub.address), locale=sub.locale)


@router.post("/unsubscribe/{token}")
async def unsubscribe(token: str, web: Web) -> HTMLResponse:
    """RFC 8058 one-click (``List-Unsubscribe=One-Click``) or the confirmation form."""
    sub = await subs.by_token(web.db, token)
    if sub is None:
        return _page(web, 404, state="unknown")
    if sub.status != subs.REMOVED:
        await subs.set_status(
            web.db, sub.id, subs.REMOVED, now=web.clock(), reason="unsubscribed by the reader"
        )
        log.info("subscription %s unsubscribed by the reader", sub.id)
    return _page(web, 200, state="done", address=mask_target(sub.address), locale=sub.locale)
