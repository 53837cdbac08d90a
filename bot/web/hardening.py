"""What the HTTP side needs to face the internet: security headers on every response, size
and time limits on every request, and a quiet refusal of requests that break them.

The headers are one mapping applied by one middleware; the limits are one dataclass. The
rest is how aiohttp's server is told about them: its protocol options (idle and header
time, line and header sizes), the application's body size, a middleware for the time a
body may take, and a request handler that answers an unreadable request (a URL or header
over the limit, a malformed request) with 414/431/400 and one log line instead of an
ERROR with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_request import BaseRequest

log = logging.getLogger("briefing.web")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",  # no scripts, images, fonts, frames or connections
        "style-src 'unsafe-inline'",  # the pages' style attributes (no style sheet to load)
        "form-action 'self'",  # the unsubscribe button posts to the page itself
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # an unsubscribe URL carries its token
    "X-Frame-Options": "DENY",
}
"""Sent with every response (pages, JSON, errors); a handler may set a stricter one."""


@dataclass(frozen=True)
class ServerLimits:
    """How much a client may send, and how slowly.

    ``idle_timeout``: a connection that has not sent a whole request head (request line and
    headers) within this many seconds of connecting or of its last response is closed, so
    an idle keep-alive connection and one trickling its headers byte by byte both end.
    ``body_timeout``: the time a request body may take to arrive (408 after it).
    ``max_body``: the largest request body accepted (413 above it).
    ``max_request_line``: the longest request line, URL included (414 above it).
    ``max_header_field``: the longest header line; ``max_headers`` their number (431).
    ``linger``: how long the rest of a refused body is read and dropped, so that the
    client, still sending, gets the answer rather than a reset connection.
    """

    idle_timeout: float = 15.0
    body_timeout: float = 10.0
    max_body: int = 64 * 1024
    max_request_line: int = 8 * 1024
    max_header_field: int = 8 * 1024 - 2  # differs from max_request_line: see _refusal
    max_headers: int = 64
    linger: float = 2.0

    def protocol_options(self) -> dict[str, Any]:
        """The options of aiohttp's HTTP protocol that enforce these limits."""
        return {
            "keepalive_timeout": self.idle_timeout,
            "max_line_size": self.max_request_line,
            "max_field_size": self.max_header_field,
            "max_headers": self.max_headers,
            "lingering_time": self.linger,
        }


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add ``SECURITY_HEADERS`` to whatever the application answers, errors included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _add_headers(exc)
        raise
    _add_headers(response)
    return response


def _add_headers(response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def body_limits(limits: ServerLimits) -> Middleware:
    """A middleware that reads a request's body before its handler runs: 413 if it is
    larger than ``limits.max_body`` (said up front or found while reading), 408 if it takes
    longer than ``limits.body_timeout``, 400 if it cannot be read (broken chunked encoding).
    The connection is closed after any of them."""

    @web.middleware
    async def read_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            length = request.content_length
            try:
                if length is not None and length > limits.max_body:
                    raise web.HTTPRequestEntityTooLarge(
                        max_size=limits.max_body, actual_size=length
                    )
                async with asyncio.timeout(limits.body_timeout):
                    await request.read()  # kept by aiohttp for the handler
            except TimeoutError:
                log.info("request body from %s too slow: closed", request.remote)
                return _closing(web.Response(status=408, text="408 Request Timeout\n"))
            except web.RequestPayloadError as exc:  # a broken chunked or compressed body
                log.info("unreadable request body from %s: %s", request.remote, type(exc).__name__)
                return _closing(web.Response(status=400, text="400 Bad Request\n"))
            except web.HTTPRequestEntityTooLarge as exc:
                exc.force_close()
                raise
        return await handler(request)

    return read_body


def _closing(response: web.Response) -> web.Response:
    response.force_close()
    return response


def _refusal(exc: HttpProcessingError, limits: ServerLimits) -> HTTPStatus:
    """The status for a request aiohttp could not read. A line over a limit says which
    limit it broke, hence the two limits differ by a little."""
    if isinstance(exc, LineTooLong):
        too_long_line = str(exc.args[1]) == str(limits.max_request_line)
        return (
            HTTPStatus.REQUEST_URI_TOO_LONG
            if too_long_line
            else HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        )
    if "Too many headers" in str(exc):
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    return HTTPStatus.BAD_REQUEST


class _Protocol(web.RequestHandler):
    """aiohttp's HTTP protocol, answering requests it cannot read with the right status and
    one log line (never the request's text, which may hold a token), and adding the
    security headers to the errors it makes itself."""

    def __init__(self, manager: web.Server, *, limits: ServerLimits, **options: Any) -> None:
        super().__init__(manager, **options)
        self.limits = limits

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status == 400 and isinstance(exc, HttpProcessingError):
            refusal = _refusal(exc, self.limits)
            level = logging.INFO if refusal == HTTPStatus.BAD_REQUEST else logging.WARNING
            if isinstance(exc, BadHttpMethod):  # not HTTP at all (TLS, a port scan)
                level = logging.DEBUG
            log.log(
                level,
                "refused a request from %s: %d %s (%s)",
                request.remote, refusal.value, refusal.phrase, type(exc).__name__,
            )  # fmt: skip
            response = web.Response(
                status=refusal.value,
                text=f"{refusal.value} {refusal.phrase}\n",
                headers=SECURITY_HEADERS,
            )
            return _closing(response)
        answer = super().handle_error(request, status, exc, message)
        _add_headers(answer)
        return answer

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """A body the client broke (bad compression, chunking) is the client's problem, one
        INFO line; anything else is logged by aiohttp, with its traceback."""
        exc = kw.get("exc_info")
        if isinstance(exc, web.RequestPayloadError | HttpProcessingError):
            log.info("dropped a request body that could not be read: %s", type(exc).__name__)
            return
        super().log_exception(*args, **kw)


class _Server(web.Server):
    def __init__(self, handler: Any, *, limits: ServerLimits, **options: Any) -> None:
        super().__init__(handler, **options)
        self.limits = limits

    def __call__(self) -> web.RequestHandler:
        return _Protocol(self, loop=self._loop, limits=self.limits, **self._kwargs)


class HardenedRunner(web.AppRunner):
    """An ``AppRunner`` whose connections enforce ``limits``."""

    def __init__(self, app: web.Application, *, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(app, **limits.protocol_options(), **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        # aiohttp builds its protocol from the server it makes; the same server, with the
        # protocol above.
        made = await super()._make_server()
        return _Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            limits=self.limits,
            **made._kwargs,
        )
