"""The web application: one FastAPI app for the API, the public pages, health and metrics.

``build_app`` makes it; each concept is a router in its own module (``health``, ``pages``,
``api``…) included here, and reaches the shared dependencies through ``bot.web.context``
(``Web``). Every response carries the security headers, every request is held to the
``ServerLimits`` (``bot.web.hardening``), and every error is a problem detail
(``bot.web.problems``).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from bot.web import admin, api, health, html, metrics, pages, problems, signup
from bot.web.context import WebContext
from bot.web.hardening import BodyLimits, with_security_headers

TITLE = "Briefing bot"


class BriefingApp(FastAPI):
    """A FastAPI application bound to a ``WebContext`` (``app.web``), adding the security
    headers outside everything else, so that errors and 500s carry them too."""

    web: WebContext

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            send = with_security_headers(send)
        await super().__call__(scope, receive, send)


def build_app(web: WebContext) -> BriefingApp:
    """The application serving ``web``'s database, pages and API."""
    from bot import __version__

    app = BriefingApp(
        title=TITLE,
        version=__version__,
        openapi_url=None,  # served by bot.web.api, behind the token
        docs_url=None,
        redoc_url=None,
    )
    app.web = web
    app.add_middleware(BodyLimits, limits=web.limits)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(api.documents)
    app.include_router(html.router)
    app.include_router(admin.router)
    app.include_router(signup.router)
    return app
