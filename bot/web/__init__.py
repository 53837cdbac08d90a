"""The bot's HTTP side: the API, the public pages, health and metrics, in one application
(``bot.web.app``) served by ``briefing run`` on ``BRIEFING_HTTP_HOST:BRIEFING_HTTP_PORT``
(``bot.web.server``); put it behind ``BRIEFING_PUBLIC_URL`` (an https reverse proxy) for
the links in emails to work."""

from bot.web.app import BriefingApp, build_app
from bot.web.context import Heartbeat, WebContext
from bot.web.hardening import SECURITY_HEADERS, ServerLimits
from bot.web.server import HttpServer, start_http

__all__ = [
    "SECURITY_HEADERS",
    "BriefingApp",
    "Heartbeat",
    "HttpServer",
    "ServerLimits",
    "WebContext",
    "build_app",
    "start_http",
]
