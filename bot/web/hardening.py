"""What the HTTP side needs to face the internet: security headers on every response, size
and time limits on every request, and a quiet refusal of requests that break them.

The headers are one mapping, added by the application to everything it answers; the limits
are one dataclass. A request's head (request line and headers) is held to them by the
server's HTTP protocol (``LimitedH11Protocol``: 414, 431, 400 and a deadline for the whole
head); its body by an ASGI middleware (``BodyLimits``: 413, 408, 400) that reads it before
the route runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

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
"""Sent with every response (pages, JSON, errors); a route may set a stricter one."""


@dataclass(frozen=True)
class ServerLimits:
    """How much a client may send, and how slowly.

    ``idle_timeout``: a connection that has not sent a whole request head (request line and
    headers) within this many seconds of connecting or of its last response is closed, so
    an idle keep-alive connection and one trickling its headers byte by byte both end.
    ``body_timeout``: the time a request body may take to arrive (408 after it).
    ``max_body``: the largest request body accepted, decoded (413 above it).
    ``max_request_line``: the longest request line, URL included (414 above it).
    ``max_header_field``: the longest header line; ``max_headers`` their number (431).
    ``linger``: how long a pause in the rest of a refused body may be while it is read
    and dropped, so that the client, still sending, gets the answer rather than a reset
    connection.
    """

    idle_timeout: float = 15.0
    body_timeout: float = 10.0
    max_body: int = 64 * 1024
    max_request_line: int = 8 * 1024
    max_header_field: int = 8 * 1024
    max_headers: int = 64
    linger: float = 2.0


def with_security_headers(send: Send) -> Send:
    """``send``, adding ``SECURITY_HEADERS`` to a response's start where they are missing."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers += [
                (name.lower().encode(), value.encode())
                for name, value in SECURITY_HEADERS.items()
                if name.lower().encode() not in present
            ]
            message = {**message, "headers": headers}
        await send(message)

    return sending


def head_refusal(head: bytes, limits: ServerLimits) -> HTTPStatus | None:
    """The status a request head (as received so far) breaks ``limits`` with, if any."""
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    complete = b"\r\n" in head
    if len(lines[0]) > limits.max_request_line:
        return HTTPStatus.REQUEST_URI_TOO_LONG
    fields = lines[1:] if complete else []
    if len(fields) > limits.max_headers or any(
        len(line) > limits.max_header_field for line in fields
    ):
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    return None


def plain_answer(status: HTTPStatus) -> bytes:
    """A whole response that closes the connection: ``status`` and the security headers."""
    body = f"{status.value} {status.phrase}\n".encode()
    headers = {
        **SECURITY_HEADERS,
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Length": str(len(body)),
        "Connection": "close",
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"HTTP/1.1 {status.value} {status.phrase}\r\n{head}\r\n".encode() + body


class LimitedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, holding each request head to ``ServerLimits``: 414 for
    a request line over the limit, 431 for a header line or too many headers, 400 for a
    malformed head, each with the security headers and one log line (never the request's
    text, which may hold a token); and a connection that has not sent a whole head within
    ``idle_timeout`` of connecting or of its last response is closed."""

    limits = ServerLimits()  # set on a subclass per server (``protocol_for``)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = bytearray()
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting = self.conn.their_state is h11.IDLE
        if waiting:
            self._head += data
            refusal = head_refusal(bytes(self._head), self.limits)
            if refusal is not None:
                self._refuse(refusal, "over the limit")
                return
        super().data_received(data)
        if waiting and self.conn.their_state is not h11.IDLE:
            self._head.clear()
            self._stop_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_head()

    def send_400_response(self, msg: str) -> None:
        self._refuse(HTTPStatus.BAD_REQUEST, "malformed")

    def _refuse(self, status: HTTPStatus, why: str) -> None:
        level = logging.INFO if status == HTTPStatus.BAD_REQUEST else logging.WARNING
        client = self.client[0] if self.client else "?"
        log.log(level, "refused a request from %s: %d %s (%s)", client, status, status.phrase, why)
        self._stop_deadline()
        if not self.transport.is_closing():
            self.transport.write(plain_answer(status))
            self.transport.close()

    def _await_head(self) -> None:
        self._stop_deadline()
        self._head.clear()
        if not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.limits.idle_timeout, self._too_slow)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._head:
                log.info("closed a connection that sent no whole request in time")
            self.transport.close()


def protocol_for(limits: ServerLimits) -> type[LimitedH11Protocol]:
    """The protocol class of a server held to ``limits``."""
    return type("LimitedH11Protocol", (LimitedH11Protocol,), {"limits": limits})


class _Refused(Exception):
    def __init__(self, status: HTTPStatus) -> None:
        self.status = status


DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS}


class BodyLimits:
    """An ASGI middleware that reads a request's body before its route runs: 413 if it is
    larger than ``limits.max_body`` (said up front, found while reading, or once decoded),
    408 if it takes longer than ``limits.body_timeout``, 400 if it cannot be read (a
    ``Content-Encoding`` that is not gzip or deflate, or a body that is not). The
    connection is closed after any of them."""

    def __init__(self, app: ASGIApp, *, limits: ServerLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            declared = headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.limits.max_body:
                raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            try:
                async with asyncio.timeout(self.limits.body_timeout):
                    body = await self._read(receive)
            except TimeoutError:
                log.info("request body from %s too slow: closed", _client(scope))
                raise _Refused(HTTPStatus.REQUEST_TIMEOUT) from None
            if body is None:
                return  # the client went away
            body = self._decoded(body, headers.get("content-encoding", "identity"), scope)
        except _Refused as refused:
            if refused.status != HTTPStatus.BAD_REQUEST:
                await self._drop_rest(receive)
            await _answer(send, refused.status)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > self.limits.max_body:
                raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            if not message.get("more_body", False):
                return bytes(body)

    async def _drop_rest(self, receive: Receive) -> None:
        """Read and drop what the client still sends, while it keeps sending (a pause of
        ``limits.linger`` ends it), for ``body_timeout + linger`` at most."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.body_timeout + self.limits.linger):
                while True:
                    async with asyncio.timeout(self.limits.linger):
                        message = await receive()
                    if message["type"] == "http.disconnect" or not message.get("more_body"):
                        return

    def _decoded(self, body: bytes, encoding: str, scope: Scope) -> bytes:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding not in DECODERS:
            log.info("unreadable request body from %s: encoding %r", _client(scope), encoding[:40])
            raise _Refused(HTTPStatus.BAD_REQUEST)
        decoder = zlib.decompressobj(DECODERS[encoding])
        try:
            decoded = decoder.decompress(body, self.limits.max_body + 1)
        except zlib.error:
            log.info("unreadable request body from %s: not %s", _client(scope), encoding)
            raise _Refused(HTTPStatus.BAD_REQUEST) from None
        if len(decoded) > self.limits.max_body:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        if not decoder.eof:
            log.info("unreadable request body from %s: truncated %s", _client(scope), encoding)
            raise _Refused(HTTPStatus.BAD_REQUEST)
        return decoded


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then waits on the real one (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: HTTPStatus) -> None:
    body = f"{status.value} {status.phrase}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": status.value,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
