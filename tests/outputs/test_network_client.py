"""The guarded HTTP client as a receiver meets it, and what the receiver's answers mean:
the request as written, bounded reads and connections, statuses, ``Retry-After``, and a
delivery log that says what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from aiohttp import web

from bot.errors import PermanentDeliveryError, RetryableDeliveryError
from bot.outputs import HttpLimits
from bot.outputs.network import (
    TargetPolicy,
    build_client,
    post_json,
    retry_after,
    send_request,
)
from tests.outputs.conftest import FAST
from tests.outputs.network_doubles import SENDERS, Resolver, Wire, socket_closed_port
from tests.receivers import HttpReceiver, drop, hang, reply

Call = Callable[[str], Awaitable[httpx.Response]]
DATE = datetime(2025, 12, 2, 7, 0, tzinfo=UTC)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    made = build_client(TargetPolicy(allow_private=True), FAST)
    yield made
    await made.aclose()


@pytest.fixture
def post(client: httpx.AsyncClient) -> Call:
    async def call(url: str) -> httpx.Response:
        return await post_json(client, url, b'{"a": 1}', total_timeout=5)

    return call


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    made = Wire()
    await made.start()
    yield made
    await made.stop()


def http_date(moment: datetime, *, gmt: bool = True) -> str:
    return format_datetime(moment, usegmt=gmt)


# ------------------------------------------------------------ what the answer means


@pytest.mark.parametrize(
    ("status", "error", "gone"),
    [
        (200, None, False),
        (204, None, False),
        (299, None, False),
        (400, PermanentDeliveryError, False),
        (404, PermanentDeliveryError, False),
        (407, PermanentDeliveryError, False),
        (408, RetryableDeliveryError, False),
        (409, PermanentDeliveryError, False),
        (410, PermanentDeliveryError, True),
        (411, PermanentDeliveryError, False),
        (428, PermanentDeliveryError, False),
        (429, RetryableDeliveryError, False),
        (430, PermanentDeliveryError, False),
        (499, PermanentDeliveryError, False),
        (500, RetryableDeliveryError, False),
        (501, RetryableDeliveryError, False),
        (599, RetryableDeliveryError, False),
    ],
)
async def test_status_classification(receiver, post, status, error, gone) -> None:
    url = receiver.on(f"/status/{status}", reply(status, f"  answer {status}\n"))
    if error is None:
        response = await post(url)
        assert response.status_code == status
        return
    with pytest.raises(error) as caught:
        await post(url)
    assert caught.value.reason == f"HTTP {status}: answer {status}"
    assert caught.value.status == status
    assert getattr(caught.value, "gone", False) is gone


@pytest.mark.parametrize("status", [300, 302, 399])
async def test_redirects_are_refused_and_not_followed(receiver, post, status) -> None:
    elsewhere = receiver.on("/elsewhere")
    url = receiver.on(f"/moved/{status}", reply(status, "", {"Location": elsewhere}))
    with pytest.raises(PermanentDeliveryError) as caught:
        await post(url)
    assert caught.value.reason == f"HTTP {status}: redirect to {elsewhere} not followed"
    assert caught.value.status == status and not caught.value.gone
    assert receiver.hits("/elsewhere") == []


async def test_a_redirect_without_location_says_so(receiver, post) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await post(receiver.on("/nowhere", reply(301)))
    assert caught.value.reason == "HTTP 301: redirect to ? not followed"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": " 7 "}, 7.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": "99999999999"}, 99999999999.0),
        ({"Retry-After": "9" * 400}, float("9" * 400)),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "120abc"}, None),
        ({}, None),
        ({"Retry-After": http_date(DATE + timedelta(seconds=30)), "Date": http_date(DATE)}, 30.0),
        ({"Retry-After": http_date(DATE - timedelta(hours=1)), "Date": http_date(DATE)}, 0.0),
        (
            {"Retry-After": http_date(DATE + timedelta(days=400)), "Date": http_date(DATE)},
            400 * 86400.0,
        ),
        (
            {
                "Retry-After": http_date(DATE + timedelta(seconds=30), gmt=False).replace(
                    "+0000", "-0000"
                ),
                "Date": http_date(DATE),
            },
            30.0,
        ),
        (
            {"Retry-After": "Tue, 02 Dec 2025 07:01:00", "Date": http_date(DATE)},
            60.0,
        ),
        ({"Retry-After": http_date(DATE), "Date": "yesterday"}, None),
        ({"Retry-After": "Tue, 32 Foo 2025 07:01:00 GMT", "Date": http_date(DATE)}, None),
    ],
)
async def test_retry_after_values(receiver: HttpReceiver, post, headers, expected) -> None:
    url = receiver.on("/busy", reply(503, "busy", headers))
    with pytest.raises(RetryableDeliveryError) as caught:
        await post(url)
    assert caught.value.retry_after == expected
    assert caught.value.status == 503


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        ({"retry_after": 2.5}, {}, 2.5),
        ({"retry_after": 0.25}, {}, 0.25),
        ({"retry_after": 3}, {"Retry-After": "60"}, 3.0),
        ({"retry_after": -1}, {}, 0.0),
        ({"retry_after": "3"}, {"Retry-After": "7"}, 7.0),
        ({"message": "You are being rate limited."}, {"Retry-After": "4"}, 4.0),
        ([1, 2], {"Retry-After": "4"}, 4.0),
    ],
)
async def test_retry_after_in_a_json_answer(receiver, post, body, headers, expected) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=429, headers=headers)

    with pytest.raises(RetryableDeliveryError) as caught:
        await post(receiver.on("/limited", answer))
    assert caught.value.retry_after == expected


async def test_broken_json_answers_fall_back_to_the_header(receiver, post) -> None:
    answer = reply(429, "{not json", {"Content-Type": "application/json", "Retry-After": "3"})
    with pytest.raises(RetryableDeliveryError) as caught:
        await post(receiver.on("/broken", answer))
    assert caught.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("status", "body", "content_type", "reason", "wait"),
    [
        (400, b"no_text", "text/plain", "HTTP 400: no_text", None),
        (429, b'{"retry_after": 2.5}', "application/json", 'HTTP 429: {"retry_after": 2.5}', 2.5),
    ],
)
async def test_a_compressed_answer_is_read_as_sent(
    receiver, post, status, body, content_type, reason, wait
) -> None:
    """Receivers may compress their answers (the client says it takes gzip): the delivery
    log and a retry-after in the body read the same as uncompressed."""

    async def compressed(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=status,
            body=gzip.compress(body),
            headers={"Content-Encoding": "gzip", "Content-Type": content_type},
        )

    with pytest.raises((PermanentDeliveryError, RetryableDeliveryError)) as caught:
        await post(receiver.on("/gzip", compressed))
    assert caught.value.reason == reason
    assert caught.value.retry_after == wait


async def test_json_is_read_only_from_answers_that_say_they_are_json(receiver, post) -> None:
    answer = reply(429, '{"retry_after": 9}', {"Retry-After": "4"})
    with pytest.raises(RetryableDeliveryError) as caught:
        await post(receiver.on("/plain", answer))
    assert caught.value.retry_after == 4.0


def test_an_http_date_needs_the_receivers_clock() -> None:
    """Without the receiver's Date there is no telling how far an HTTP date is."""
    later = http_date(DATE + timedelta(seconds=30))
    assert retry_after(httpx.Response(503, headers={"retry-after": later})) is None


# ------------------------------------------------------------ what the delivery log says


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        ("x" * 500, "x" * 500),
        ("x" * 501, "x" * 500 + "…"),
        ("y" * 5000, "y" * 500 + "…"),
        ("\n  short  \n", "short"),
    ],
    ids=["at-limit", "one-over", "long", "blank-edges"],
)
async def test_the_receivers_answer_is_logged_shortened(receiver, post, answer, logged) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await post(receiver.on("/answer", reply(400, answer)))
    assert caught.value.reason == f"HTTP 400: {logged}"


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        ("😀" * 500, "😀" * 500),
        ("😀" * 501, "😀" * 500 + "…"),
        ("é" * 600, "é" * 500 + "…"),
        (b"\xff\xfe not utf-8", "�� not utf-8"),
    ],
    ids=["wide-at-limit", "wide-over", "accents", "not-utf-8"],
)
async def test_any_answer_is_logged_readably(receiver, post, answer, logged) -> None:
    async def reply_bytes(request: web.Request) -> web.StreamResponse:
        body = answer if isinstance(answer, bytes) else answer.encode()
        return web.Response(status=400, body=body, content_type="text/plain")

    with pytest.raises(PermanentDeliveryError) as caught:
        await post(receiver.on("/odd", reply_bytes))
    assert caught.value.reason == f"HTTP 400: {logged}"


@pytest.fixture(params=SENDERS.values(), ids=SENDERS.keys())
def send(request):
    """``post_json``, then ``send_request``: both fail in the same words."""
    return request.param


async def test_an_overall_deadline_cuts_a_slow_answer(receiver, client, send) -> None:
    url = receiver.on("/slow", hang(1))
    with pytest.raises(RetryableDeliveryError, match=r"^no answer within 0.2 s$"):
        await send(client, url, b"{}", total_timeout=0.2)


async def test_a_read_timeout_is_retryable_and_says_why(receiver, send) -> None:
    limits = HttpLimits(connect_timeout=1.0, total_timeout=0.3)
    client = build_client(TargetPolicy(allow_private=True), limits)
    try:
        with pytest.raises(RetryableDeliveryError) as caught:
            await send(client, receiver.on("/slow", hang(1)), b"{}", total_timeout=5)
    finally:
        await client.aclose()
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.TimeoutException)
    library_error = cause.__cause__  # what aiohttp said
    assert str(library_error)
    assert caught.value.reason == f"timed out: {library_error}"


async def test_a_refused_connection_is_retryable_and_says_why(client, send) -> None:
    with socket_closed_port() as port, pytest.raises(RetryableDeliveryError) as caught:
        await send(client, f"http://127.0.0.1:{port}/x", b"{}", total_timeout=5)
    cause = caught.value.__cause__
    assert cause is not None and str(cause)
    assert caught.value.reason == f"connection failed: {cause}"


async def test_a_dropped_connection_is_retryable_and_says_why(receiver, client, send) -> None:
    with pytest.raises(RetryableDeliveryError) as caught:
        await send(client, receiver.on("/drop", drop()), b"{}", total_timeout=5)
    library_error = caught.value.__cause__.__cause__  # what aiohttp said
    assert str(library_error)
    assert caught.value.reason == f"connection failed: {library_error}"


# ------------------------------------------------------------ what the receiver sees


async def test_the_receiver_gets_the_request_as_written(wire: Wire) -> None:
    """Path and query reach the receiver byte for byte (signed webhook URLs depend on it),
    and the body is sent as it is: no compression a receiver might not take."""
    dns = Resolver(["127.0.0.1"])
    client = build_client(TargetPolicy(allow_private=True, lookup=dns), FAST)
    target = "/hooks/a%2Fb/%7Euser?sig=a%2Bb%3D&x=%20y"
    try:
        await post_json(
            client, f"http://hook.example:{wire.port}{target}", b'{"a": 1}', total_timeout=2
        )
        await post_json(client, f"http://hook.example:{wire.port}/empty", b"", total_timeout=2)
    finally:
        await client.aclose()
    first, empty = wire.requests
    head, _, body = first.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == f"POST {target} HTTP/1.1"
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
    assert headers["host"] == f"hook.example:{wire.port}"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "briefing-bot"
    assert "content-encoding" not in headers and "transfer-encoding" not in headers
    assert body == b'{"a": 1}' and headers["content-length"] == "8"
    assert empty.startswith(b"POST /empty HTTP/1.1\r\n") and empty.endswith(b"\r\n\r\n")
    assert re.search(rb"(?im)^content-length: 0\r$", empty)


async def test_what_the_receiver_sees(receiver, client, send) -> None:
    url = receiver.on("/seen")
    await send(client, url, b'{"a": 1}', headers={"x-extra": "1"}, total_timeout=5)
    await send(client, url, b"[]", total_timeout=5)
    first, second = receiver.hits("/seen")
    assert first.body == b'{"a": 1}' and second.body == b"[]"
    assert first.headers["x-extra"] == "1" and "x-extra" not in second.headers
    assert first.headers["User-Agent"] == second.headers["User-Agent"] == "briefing-bot"
    if send is post_json:
        assert first.headers["Content-Type"] == "application/json"


async def test_any_request_comes_back_with_its_answer_whatever_the_status(receiver, client) -> None:
    """``send_request`` (a PUT, a form…) leaves the answer to the output that asked."""
    url = receiver.on("/put", reply(500, "platform says no"))
    response = await send_request(
        client,
        "PUT",
        url,
        b"a=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
        total_timeout=5,
    )
    assert (response.status_code, response.text) == (500, "platform says no")
    (request,) = receiver.hits("/put")
    assert request.body == b"a=1"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["User-Agent"] == "briefing-bot"
    plain = await send_request(client, "DELETE", url, b"", total_timeout=5)
    assert plain.status_code == 500


async def test_any_request_of_the_guarded_client_says_who_it_is(receiver, client) -> None:
    response = await client.get(receiver.on("/who"))
    assert response.status_code == 200
    assert receiver.hits("/who")[0].headers["User-Agent"] == "briefing-bot"


async def test_an_endless_answer_is_read_only_so_far(receiver, client) -> None:
    """A receiver that never stops answering gets 64 KiB read, no more, and no wait."""

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while True:  # in pieces that do not divide 64 KiB, arriving one by one
                await response.write(b"x" * 5000)
                await asyncio.sleep(0.001)
        return response

    response = await post_json(client, receiver.on("/endless", endless), b"{}", total_timeout=5)
    assert response.status_code == 200
    assert response.content == b"x" * (64 * 1024)


async def test_connections_to_one_receiver_are_capped(receiver: HttpReceiver) -> None:
    """At most 64 connections at once to a receiver, by default; the rest wait their turn."""
    in_flight = 0
    peak = 0
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await release.wait()
        in_flight -= 1
        return web.Response(text="ok")

    url = receiver.on("/slow", slow)
    client = build_client(
        TargetPolicy(allow_private=True), HttpLimits(connect_timeout=2.0, total_timeout=20.0)
    )
    try:
        sends = [
            asyncio.ensure_future(post_json(client, url, b"{}", total_timeout=20))
            for _ in range(70)
        ]
        for _ in range(300):  # however slow this machine is today
            if in_flight >= 64:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # time for a 65th to arrive, were it let through
        assert peak == 64
        release.set()
        responses = await asyncio.gather(*sends)
    finally:
        release.set()
        await client.aclose()
    assert [r.status_code for r in responses] == [200] * 70


async def test_closing_the_client_closes_its_connections(wire: Wire, caplog) -> None:
    """Closing lets go of every connection, cleanly: no "unclosed" complaint in the log."""
    client = build_client(TargetPolicy(allow_private=True), FAST)
    await post_json(client, f"http://127.0.0.1:{wire.port}/x", b"{}", total_timeout=2)
    await asyncio.sleep(0.05)
    assert wire.closed == 0  # kept for the next request
    await client.aclose()
    for _ in range(500):
        if wire.closed:
            break
        await asyncio.sleep(0.01)
    assert wire.closed == 1
    del client
    gc.collect()
    await asyncio.sleep(0)
    assert "nclosed" not in caplog.text
