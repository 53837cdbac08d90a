"""The HTTP side facing a hostile or broken client, over real sockets: security headers on
every response, a health check that tells the public nothing, and size and time limits."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store import subscriptions as subs
from bot.store.database import Database
from bot.web import SECURITY_HEADERS, ServerLimits, build_app, start_http
from tests.receivers import free_port
from tests.web.conftest import web_for
from tests.web.test_pages import reader

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)

FAST = ServerLimits(idle_timeout=1.0, body_timeout=1.0, max_body=4096, linger=0.5)
CSP = SECURITY_HEADERS["Content-Security-Policy"]


async def serve(db: Database, limits: ServerLimits = FAST):
    server = await start_http(build_app(web_for(db, limits=limits)), host="127.0.0.1", port=0)
    return server, server.port


@pytest.fixture
async def site(db):
    runner, port = await serve(db)
    yield port, db
    await runner.close()


def assert_hardened(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)


async def exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    reader_, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        async with asyncio.timeout(timeout):
            return await reader_.read()
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_every_response_carries_the_security_headers(site) -> None:
    port, db = site
    sub = await reader(db)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        responses = [
            await client.get(f"{base}/unsubscribe/{sub.unsubscribe_token}"),
            await client.get(f"{base}/unsubscribe/unknown-token"),
            await client.get(f"{base}/no/such/page"),
            await client.put(f"{base}/healthz"),
            await client.get(f"{base}/healthz"),
            await client.post(f"{base}/unsubscribe/{sub.unsubscribe_token}"),
        ]
    assert [r.status_code for r in responses] == [200, 404, 404, 405, 200, 200]
    for response in responses:
        assert_hardened(response)
    page, unknown = responses[0], responses[1]
    assert page.headers["content-type"].startswith("text/html")
    assert "Unknown link" in unknown.text and unknown.headers["content-type"].startswith(
        "text/html"
    )
    assert "default-src 'none'" in CSP and "frame-ancestors 'none'" in CSP
    assert page.headers["Cache-Control"] == "no-store"


async def test_the_health_check_tells_the_public_nothing(site, caplog) -> None:
    port, _ = site
    async with httpx.AsyncClient() as client:
        ok = await client.get(f"http://127.0.0.1:{port}/healthz")
    assert ok.status_code == 200 and ok.json() == {"status": "ok"}
    assert ok.headers["X-Content-Type-Options"] == "nosniff"

    # a database that is down: PostgreSQL's address with nothing listening
    stopped = Database(
        create_async_engine(f"postgresql+asyncpg://briefing:pa55word@127.0.0.1:{free_port()}/x")
    )
    runner, down_port = await serve(stopped)
    caplog.set_level(logging.INFO, logger="briefing.web")
    try:
        async with httpx.AsyncClient() as client:
            down = await client.get(f"http://127.0.0.1:{down_port}/healthz")
    finally:
        await runner.close()
        await stopped.close()
    assert down.status_code == 503 and down.json() == {"status": "error"}
    assert "refused" not in down.text.lower() and "pa55word" not in caplog.text
    (record,) = [r for r in caplog.records if r.name == "briefing.web" and "health" in r.message]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "the database did not answer" in record.message and "\n" not in record.message
    assert "Connect" in record.message or "refused" in record.message.lower()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_100_kb_url_is_refused_with_414_and_no_error_in_the_log(site, caplog) -> None:
    port, db = site
    sub = await reader(db)
    caplog.set_level(logging.DEBUG)
    url = f"/unsubscribe/{sub.unsubscribe_token}?" + "a" * 100_000
    answer = await exchange(port, f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status_of(answer) == 414
    head = answer.split(b"\r\n\r\n")[0].decode().lower()
    assert "x-content-type-options: nosniff" in head and "content-security-policy:" in head
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    refused = [r for r in caplog.records if r.name == "briefing.web" and "refused" in r.message]
    assert [r.levelno for r in refused] == [logging.WARNING]
    assert "414" in refused[0].message and refused[0].exc_info is None
    assert sub.unsubscribe_token not in caplog.text  # the URL is never logged
    # an aiohttp client sees the same, and the server keeps serving
    async with aiohttp.ClientSession() as client:
        async with client.get(f"http://127.0.0.1:{port}{url}") as too_long:
            assert too_long.status == 414
        async with client.get(f"http://127.0.0.1:{port}/healthz") as health:
            assert health.status == 200
    assert (await subs.get(db, sub.id)).status == "active"


async def test_oversized_headers_are_refused_with_431(site, caplog) -> None:
    port, _ = site
    long_header = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 20_000}\r\n\r\n"
    assert status_of(await exchange(port, long_header.encode())) == 431
    many = "".join(f"X-H{n}: {n}\r\n" for n in range(200))
    assert (
        status_of(await exchange(port, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode()))
        == 431
    )
    assert status_of(await exchange(port, b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n")) == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_client_trickling_its_headers_is_cut_off(site) -> None:
    port, _ = site
    reader_, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200
    closed_after = None
    try:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            if reader_.at_eof() or writer.is_closing():
                break
            try:
                async with asyncio.timeout(0.1):
                    if await reader_.read(1) == b"":
                        closed_after = time.monotonic() - started
                        break
            except TimeoutError:
                continue
    except ConnectionError:
        closed_after = time.monotonic() - started
    finally:
        writer.close()
    assert closed_after is not None, "the server never closed the connection"
    # the server's clock starts at accept, a little before the client's: 0.1 s of slack
    assert FAST.idle_timeout - 0.1 <= closed_after < FAST.idle_timeout + 1.5


async def test_an_idle_keep_alive_connection_is_closed(site) -> None:
    port, _ = site
    reader_, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = (await reader_.readuntil(b"\r\n\r\n")).lower()
    assert head.startswith(b"http/1.1 200") and b"connection: close" not in head
    length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader_.readexactly(length)
    started = time.monotonic()
    async with asyncio.timeout(FAST.idle_timeout + 2):
        assert await reader_.read() == b""  # closed by the server
    assert time.monotonic() - started < FAST.idle_timeout + 1.5
    writer.close()


async def test_an_oversized_body_is_refused_with_413(site) -> None:
    port, db = site
    sub = await reader(db)
    url = f"http://127.0.0.1:{port}/unsubscribe/{sub.unsubscribe_token}"
    async with httpx.AsyncClient() as client:
        declared = await client.post(url, content=b"x" * (FAST.max_body + 1))

        async def chunks():
            for _ in range(10):
                yield b"y" * 1024

        chunked = await client.post(url, content=chunks())
        small = await client.post(url, content=b"List-Unsubscribe=One-Click")
    assert declared.status_code == 413 and chunked.status_code == 413
    assert_hardened(declared)
    assert small.status_code == 200  # and only this one unsubscribed
    assert [s.id for s in await subs.list_all(db)] == []


async def test_a_slow_body_gets_408_within_the_limit(site) -> None:
    port, db = site
    sub = await reader(db)
    reader_, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /unsubscribe/{sub.unsubscribe_token} HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 100\r\n\r\nList-".encode()
    )
    await writer.drain()
    started = time.monotonic()
    async with asyncio.timeout(FAST.body_timeout + FAST.linger + 2):
        answer = await reader_.read()
    writer.close()
    assert status_of(answer) == 408
    assert time.monotonic() - started < FAST.body_timeout + FAST.linger + 1
    assert (await subs.get(db, sub.id)).status == "active"


async def test_a_body_that_cannot_be_read_is_a_400_not_an_error(site, caplog) -> None:
    port, db = site
    sub = await reader(db)
    caplog.set_level(logging.INFO, logger="briefing.web")
    garbage = b"this is not gzip at all"
    answer = await exchange(
        port,
        f"POST /unsubscribe/{sub.unsubscribe_token} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Encoding: gzip\r\nContent-Length: {len(garbage)}\r\n\r\n".encode()
        + garbage,
    )
    assert status_of(answer) == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.message for r in caplog.records if "unreadable request body" in r.message]
    assert (await subs.get(db, sub.id)).status == "active"
