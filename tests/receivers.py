"""Real receivers on 127.0.0.1 for output tests: an HTTP server and an SMTP server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope as SMTPEnvelope
from aiosmtpd.smtp import Session


@dataclass
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class HttpReceiver:
    """Records every request; answers by the first path segment's scripted behaviour.

    ``script[path]`` is a list of responses used in turn (the last one repeats).
    """

    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[Behaviour]] = field(default_factory=dict)
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str, *behaviours: Behaviour) -> str:
        self.script[path] = list(behaviours)
        return f"{self.base}{path}"

    def hits(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Received(request.path, request.query_string, dict(request.headers), body)
        )
        behaviours = self.script.get(request.path) or [reply(200, "ok")]
        behaviour = behaviours.pop(0) if len(behaviours) > 1 else behaviours[0]
        return await behaviour(request)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def reply(status: int, text: str = "", headers: dict[str, str] | None = None) -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=text, headers=headers)

    return behaviour


def reply_json(status: int, data: Any) -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        return web.json_response(data, status=status)

    return behaviour


def hang(seconds: float) -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(text="too late")

    return behaviour


def drop() -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(0.1)
        return web.Response(text="never sent")

    return behaviour


class RecordingHandler:
    """SMTP handler that keeps messages; some recipients get scripted refusals.

    ``data_delay`` holds every DATA answer back that many seconds. ``sessions`` counts
    EHLO greetings; with ``start_smtp``, ``connections`` counts the
    connections accepted and ``open_connections`` those not closed yet.
    """

    def __init__(self) -> None:
        self.messages: list[SMTPEnvelope] = []
        self.sessions = 0
        self.refusals: dict[str, str] = {}
        self.connections = 0
        self.open_connections = 0
        self.data_delay = 0.0

    async def settled(self, open_connections: int = 0, *, timeout: float = 5.0) -> int:
        """Wait until ``open_connections`` connections are open (closing ones take a moment
        to reach the server); return the number open when done waiting."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (
            self.open_connections != open_connections
            and asyncio.get_running_loop().time() < deadline
        ):
            await asyncio.sleep(0.01)
        return self.open_connections

    async def handle_EHLO(
        self,
        server: SMTPServer,
        session: Session,
        envelope: SMTPEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: SMTPEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        for needle, answer in self.refusals.items():
            if needle in address:
                return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTPServer, session: Session, envelope: SMTPEnvelope
    ) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _CountingSMTPServer(SMTPServer):
    """The aiosmtpd server, counting its connections on the recording handler."""

    def __init__(self, handler: RecordingHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.recorder = handler
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.counted:  # STARTTLS makes a second call for the same connection
            self.counted = True
            self.recorder.connections += 1
            self.recorder.open_connections += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self.counted:
            self.counted = False
            self.recorder.open_connections -= 1
        super().connection_lost(error)


class _CountingController(Controller):
    def factory(self) -> SMTPServer:
        return _CountingSMTPServer(self.handler, **self.SMTP_kwargs)


def start_smtp(*, smtputf8: bool = True, **kwargs: Any) -> tuple[Controller, RecordingHandler]:
    """A real SMTP server on 127.0.0.1 recording what it gets; ``smtputf8=False`` makes it
    not offer SMTPUTF8 (RFC 6531), which aiosmtpd offers by default. Other keywords go to
    aiosmtpd's ``Controller``."""
    handler = RecordingHandler()
    controller = _CountingController(
        handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=smtputf8, **kwargs
    )
    controller.start()
    return controller, handler
