"""Zulip's output against a local Zulip stand-in (tests/outputs/platforms.py) answering as
https://zulip.com/api/send-message and https://zulip.com/api/rest-error-handling document."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl

import pytest

from bot.errors import PermanentDeliveryError, RetryableDeliveryError, TargetError
from bot.outputs import Envelope, Target, infer_kind, output_class
from tests.outputs.conftest import message_for
from tests.outputs.platforms import ZULIP_EMAIL, ZULIP_KEY, PlatformReceiver, zulip_error


@pytest.fixture
async def zulip():
    server = PlatformReceiver()
    await server.start()
    yield server
    await server.stop()


async def test_a_form_post_with_basic_authentication(zulip, context, renderer, long_digest) -> None:
    output = output_class("zulip")(context)
    target = await output.validate(zulip.target("zulip", "org"))
    receipt = await output.send(
        target, message_for(renderer, long_digest, "zulip"), envelope=Envelope("d")
    )
    requests = zulip.under("/org")
    assert receipt.parts == len(requests) > 1 and '"success"' in receipt.answer
    login = base64.b64encode(f"{ZULIP_EMAIL}:{ZULIP_KEY}".encode()).decode()
    for request in requests:
        assert request.path == "/org/api/v1/messages"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert request.headers["Authorization"] == f"Basic {login}"
        form = dict(parse_qsl(request.body.decode()))
        assert (form["type"], form["to"], form["topic"]) == ("stream", "briefing", "Daily briefing")
        assert len(form["content"].encode()) <= 10_000
    # what the channel shows: every part whole, under the topic given (Zulip cuts a longer
    # content or topic short rather than refuse it)
    sent = [dict(parse_qsl(r.body.decode())) for r in requests]
    assert zulip.zulip_messages == [
        {"to": "briefing", "topic": "Daily briefing", "content": form["content"].rstrip()}
        for form in sent
    ]
    first = dict(parse_qsl(requests[0].body.decode()))["content"]
    assert first.startswith(f"**{long_digest.story} — ")
    assert "_confirmed" not in first  # Zulip has no _italic_: *italic*


async def test_rate_limit_waits_as_told(zulip, context, renderer, digest) -> None:
    limited = zulip_error(
        429, "RATE_LIMIT_HIT", "API usage exceeded rate limit", **{"retry-after": 28.5}
    )
    target = zulip.target("zulip", "limited", limited)
    with pytest.raises(RetryableDeliveryError) as caught:
        await output_class("zulip")(context).send(
            target, message_for(renderer, digest, "zulip"), envelope=Envelope("d")
        )
    assert caught.value.retry_after == 28.5 and "RATE_LIMIT_HIT" in caught.value.reason


async def test_a_refused_api_key_pauses_the_subscription(zulip, context, renderer, digest) -> None:
    target = zulip.target("zulip", "key")
    target = Target("zulip", target.address, ("WrongKey0123456789abcdefghijklmn",))
    with pytest.raises(PermanentDeliveryError) as caught:
        await output_class("zulip")(context).send(
            target, message_for(renderer, digest, "zulip"), envelope=Envelope("d")
        )
    assert caught.value.gone and "Invalid API key" in caught.value.reason


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("topic=t&email=bot@x.org", "stream"),
        ("stream=s&email=bot@x.org", "topic"),
        ("stream=s&topic=t", "email"),
        ("stream=s&topic=" + "t" * 61 + "&email=bot@x.org", "60 characters"),
    ],
)
async def test_bad_targets(context, query, problem) -> None:
    with pytest.raises(TargetError, match=problem):
        await output_class("zulip")(context).validate(
            Target("zulip", f"http://127.0.0.1:9/?{query}", (ZULIP_KEY,))
        )


async def test_channel_is_another_name_for_stream(context) -> None:
    target = await output_class("zulip")(context).validate(
        Target("zulip", "http://127.0.0.1:9/?channel=news&topic=t&email=bot@x.org", (ZULIP_KEY,))
    )
    assert "stream=news" in target.address


def test_zulip_cloud_is_a_zulip_target() -> None:
    assert infer_kind("https://briefing.zulipchat.com/?stream=s&topic=t&email=b@x.org") == "zulip"
