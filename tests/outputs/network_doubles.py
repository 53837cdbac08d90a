"""Network doubles for output tests, all on this machine's loopback: a DNS under the
test's control, listeners that count connections, and receivers that record requests."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Iterator

import httpx
from aiohttp import web

from bot.outputs.network import classify, post_json, send_request
from tests.receivers import Received

PUBLIC = "93.184.215.14"  # a public address, only ever checked, never connected to


async def send_as_request(
    client: httpx.AsyncClient,
    url: str,
    payload: bytes,
    *,
    headers: dict[str, str] | None = None,
    total_timeout: float,
) -> httpx.Response:
    """``send_request`` with ``post_json``'s signature, its answer classified the same way."""
    response = await send_request(
        client, "POST", url, payload, headers=headers, total_timeout=total_timeout
    )
    classify(response)
    return response


# the two ways an output sends: both must fail in the same words
SENDERS = {"post_json": post_json, "send_request": send_as_request}


class Resolver:
    """A lookup that gives scripted answers in turn (the last one repeats) and records
    every question, like a DNS server under an attacker's control."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Tripwire:
    """TCP listeners on 127.0.0.1 and ::1 (one port) that count the connections offered."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0
        self.servers: list[asyncio.Server] = []

    async def start(self) -> None:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            writer.close()

        v4 = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.port = v4.sockets[0].getsockname()[1]
        self.servers.append(v4)
        with contextlib.suppress(OSError):
            self.servers.append(await asyncio.start_server(on_connect, "::1", self.port))

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()


class V6Receiver:
    """An HTTP receiver on ::1 that records requests."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            self.requests.append(Received(request.path, "", dict(request.headers), body))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "::1", 0)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]


class Wire:
    """A bare HTTP/1.1 listener on 127.0.0.1: keeps every request as the bytes that came
    in, answers 200, and counts the connections the client has closed."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.closed = 0
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = re.search(rb"(?im)^content-length: *(\d+)", head)
                    body = await reader.readexactly(int(length.group(1)) if length else 0)
                    self.requests.append(head + body)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                self.closed += 1
            writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@contextlib.contextmanager
def socket_closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]  # bound, not listening: connections are refused
