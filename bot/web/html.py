"""Server-rendered pages (the admin page and the public sign-up pages): one stylesheet,
templates from the bot's template set, and a Content-Security-Policy per kind of page."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from bot.web.context import Web, WebContext
from bot.web.i18n import translator

PAGE_CSP = "; ".join(
    [
        "default-src 'none'",  # no scripts at all
        "style-src 'self'",  # the one stylesheet, /static/site.css
        "img-src 'self'",
        "form-action 'self'",
        "frame-src 'self'",  # the admin page's email preview (itself sandboxed)
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
FRAMED_CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",  # the email's own inline styles
        "img-src data:",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'self'",  # shown only inside the admin page
    ]
)
PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
STYLESHEET = "site.css"  # in the templates directory (a Jinja template with no tags)

router = APIRouter(include_in_schema=False)


def page(
    web: WebContext, name: str, *, locale: str, status: int = 200, **values: object
) -> HTMLResponse:
    """The template ``name`` rendered in ``locale`` (``t`` gives its words), sent with the
    page policy; never cached."""
    html = web.renderer.page(name, locale=locale, t=translator(locale), **values)
    headers = {**PRIVATE, "Content-Security-Policy": PAGE_CSP}
    return HTMLResponse(html, status_code=status, headers=headers)


def framed(html: str) -> HTMLResponse:
    """A document shown in a sandboxed frame of the admin page (an email's HTML body)."""
    headers = {**PRIVATE, "Content-Security-Policy": FRAMED_CSP, "X-Frame-Options": "SAMEORIGIN"}
    return HTMLResponse(html, headers=headers)


@router.get("/static/site.css")
async def stylesheet(web: Web) -> Response:
    css = web.renderer.page(STYLESHEET)
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})
