"""Matrix's output against a local homeserver stand-in (tests/outputs/platforms.py) that
keeps rooms' timelines and transaction ids as the client-server API specifies
(https://spec.matrix.org/latest/client-server-api/#transaction-identifiers)."""

from __future__ import annotations

import json

import pytest

from bot.delivery import RetryPolicy, deliver
from bot.errors import PermanentDeliveryError, RetryableDeliveryError, TargetError
from bot.outputs import Envelope, Target, infer_kind, output_class
from tests.outputs.conftest import message_for
from tests.outputs.platforms import (
    MATRIX_ROOM,
    MATRIX_TOKEN,
    PlatformReceiver,
    answer_json,
    matrix_error,
)
from tests.receivers import reply


@pytest.fixture
async def homeserver():
    server = PlatformReceiver()
    await server.start()
    yield server
    await server.stop()


async def no_sleep(seconds: float) -> None:
    return None


async def send_once(homeserver, context, message, name: str, delivery: str) -> list[str]:
    """What the room shows after one clean delivery of ``message`` (a reference)."""
    target = homeserver.target("matrix", name)
    await output_class("matrix")(context).send(target, message, envelope=Envelope(delivery))
    return homeserver.homeserver.shown(MATRIX_ROOM)


async def test_an_html_message_with_a_plain_body_and_no_mentions(
    homeserver, context, renderer, digest
) -> None:
    output = output_class("matrix")(context)
    target = await output.validate(homeserver.target("matrix", "hs"))
    receipt = await output.send(
        target, message_for(renderer, digest, "matrix"), envelope=Envelope("dlv_mx")
    )
    (request,) = homeserver.under("/hs")
    assert request.path == (
        f"/hs/_matrix/client/v3/rooms/{MATRIX_ROOM}/send/m.room.message/briefing.dlv_mx.0"
    )
    assert request.headers["Authorization"] == f"Bearer {MATRIX_TOKEN}"
    content = request.json()
    assert content["msgtype"] == "m.text" and content["m.mentions"] == {}
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"].startswith(f"<b>{digest.story} — ")
    assert "<br>" in content["formatted_body"] and "\n" not in content["formatted_body"]
    assert content["body"].startswith(f"{digest.story} — ") and "<b>" not in content["body"]
    assert receipt.status == "200" and '"event_id"' in receipt.answer


async def test_a_part_stored_before_a_failed_answer_is_shown_once(
    homeserver, context, renderer, long_digest
) -> None:
    message = message_for(renderer, long_digest, "matrix")
    reference = await send_once(homeserver, context, message, "first", "dlv_reference")
    homeserver.homeserver.timelines.clear()
    homeserver.homeserver.fail_after_store = 1  # the first PUT is stored, then answered 500
    outcome = await deliver(
        output_class("matrix")(context),
        homeserver.target("matrix", "retry"),
        message,
        envelope=Envelope("dlv_retry"),
        policy=RetryPolicy(attempts=3, base=0.01, cap=0.01),
        sleep=no_sleep,
    )
    assert outcome.ok and outcome.attempts == 2
    puts = homeserver.under("/retry")
    assert len(puts) == len(reference) + 1  # the first part was sent twice…
    assert puts[0].path == puts[1].path  # …with the same transaction id…
    assert homeserver.homeserver.shown(MATRIX_ROOM) == reference  # …and is shown once


async def test_a_failed_later_part_resumes_without_repeating_earlier_ones(
    homeserver, context, renderer, long_digest
) -> None:
    message = message_for(renderer, long_digest, "matrix")
    reference = await send_once(homeserver, context, message, "first", "dlv_reference")
    assert len(reference) > 2
    homeserver.homeserver.timelines.clear()
    answer = homeserver.answer()
    target = homeserver.target("matrix", "later", answer, reply(502, "bad gateway"), answer)
    outcome = await deliver(
        output_class("matrix")(context),
        target,
        message,
        envelope=Envelope("dlv_later"),
        policy=RetryPolicy(attempts=3, base=0.01, cap=0.01),
        sleep=no_sleep,
    )
    assert outcome.ok and outcome.parts == len(reference)
    assert homeserver.homeserver.shown(MATRIX_ROOM) == reference


async def test_events_stay_under_64_kib(homeserver, context, renderer, long_digest) -> None:
    target = homeserver.target("matrix", "big")
    await output_class("matrix")(context).send(
        target, message_for(renderer, long_digest, "matrix"), envelope=Envelope("d")
    )
    puts = homeserver.under("/big")
    assert len(puts) > 1
    # the event the homeserver builds: the content plus its envelope (ids, hashes, signatures)
    for put in puts:
        event = {"content": put.json(), "room_id": MATRIX_ROOM, "sender": "@bot:example.org"}
        assert len(json.dumps(event, ensure_ascii=False).encode()) + 2048 < 65_536


@pytest.mark.parametrize(
    ("limited", "wait"),
    [
        (matrix_error(429, "M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=1500), 1.5),
        # spec v1.10 on: a Retry-After header, retry_after_ms deprecated (and may be absent)
        (
            answer_json(
                429,
                {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests"},
                {"Retry-After": "3"},
            ),
            3.0,
        ),
    ],
)
async def test_rate_limit_waits_as_told(
    homeserver, context, renderer, digest, limited, wait
) -> None:
    target = homeserver.target("matrix", "limited", limited)
    with pytest.raises(RetryableDeliveryError) as caught:
        await output_class("matrix")(context).send(
            target, message_for(renderer, digest, "matrix"), envelope=Envelope("d")
        )
    assert caught.value.retry_after == wait and "M_LIMIT_EXCEEDED" in caught.value.reason


@pytest.mark.parametrize(("status", "errcode"), [(403, "M_FORBIDDEN"), (401, "M_UNKNOWN_TOKEN")])
async def test_a_room_closed_to_the_account_pauses_the_subscription(
    homeserver, context, renderer, digest, status, errcode
) -> None:
    target = homeserver.target("matrix", "closed", matrix_error(status, errcode, "nope"))
    with pytest.raises(PermanentDeliveryError) as caught:
        await output_class("matrix")(context).send(
            target, message_for(renderer, digest, "matrix"), envelope=Envelope("d")
        )
    assert caught.value.gone and errcode in caught.value.reason


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("http://127.0.0.1:9/#/!abc:example.org", "http://127.0.0.1:9/#/!abc:example.org"),
        ("http://127.0.0.1:9/#!abc:example.org", "http://127.0.0.1:9/#/!abc:example.org"),
        ("http://127.0.0.1:9/#/room/!abc:example.org", "http://127.0.0.1:9/#/!abc:example.org"),
        ("http://127.0.0.1:9/base/#/!abcDEF123", "http://127.0.0.1:9/base/#/!abcDEF123"),
    ],
)
async def test_target_forms(context, address, kept) -> None:
    target = await output_class("matrix")(context).validate(
        Target("matrix", address, (MATRIX_TOKEN,))
    )
    assert target.address == kept


@pytest.mark.parametrize(
    ("address", "secrets", "problem"),
    [
        ("http://127.0.0.1:9/#/!abc:example.org", (), "access token"),
        ("http://127.0.0.1:9/#/#alias:example.org", (MATRIX_TOKEN,), "room id"),
        ("https://matrix.example.org/", (MATRIX_TOKEN,), "room id"),
    ],
)
async def test_bad_targets_are_refused(context, address, secrets, problem) -> None:
    with pytest.raises(TargetError, match=problem):
        await output_class("matrix")(context).validate(Target("matrix", address, secrets))


def test_a_room_link_is_a_matrix_target() -> None:
    assert infer_kind("https://matrix.example.org/#/!abc:example.org") == "matrix"
    assert infer_kind("https://example.org/#/section") == "generic"
