"""Google Chat's output against a local incoming-webhook stand-in (tests/outputs/platforms.py)
answering as https://developers.google.com/workspace/chat/quickstart/webhooks and
https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages/create
document."""

from __future__ import annotations

import pytest

from bot.errors import TargetError
from bot.outputs import Envelope, Target, infer_kind, output_class
from tests.outputs.conftest import message_for
from tests.outputs.platforms import GOOGLE_KEY, GOOGLE_TOKEN, PlatformReceiver


@pytest.fixture
async def space():
    server = PlatformReceiver()
    await server.start()
    yield server
    await server.stop()


async def test_one_digest_is_one_thread(space, context, renderer, long_digest) -> None:
    output = output_class("googlechat")(context)
    target = await output.validate(space.target("googlechat", "chat"))
    receipt = await output.send(
        target, message_for(renderer, long_digest, "googlechat"), envelope=Envelope("dlv_gc")
    )
    requests = space.under("/chat")
    assert receipt.parts == len(requests) > 1
    for request in requests:
        query = dict(part.split("=", 1) for part in request.query.split("&"))
        assert query["key"] == GOOGLE_KEY and query["token"] == GOOGLE_TOKEN
        assert query["messageReplyOption"] == "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
        assert request.json()["thread"] == {"threadKey": "briefing-dlv_gc"}
    # what the space shows: every part, in order, in one thread
    assert list(space.space.threads) == ["briefing-dlv_gc"]
    assert space.space.threads["briefing-dlv_gc"] == [r.json()["text"] for r in requests]


async def test_text_uses_google_chat_formatting(space, context, renderer, digest) -> None:
    target = space.target("googlechat", "fmt")
    await output_class("googlechat")(context).send(
        target, message_for(renderer, digest, "googlechat"), envelope=Envelope("d")
    )
    text = space.under("/fmt")[0].json()["text"]
    assert text.startswith(f"*{digest.story} — ")  # *bold*, not **bold**
    assert "**" not in text and "\\" not in text  # no markdown escapes: Chat shows them


@pytest.mark.parametrize(
    "address",
    [
        "https://chat.googleapis.com/v1/spaces/AAAA/messages",  # no key, no token
        "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=k",
        "https://chat.googleapis.com/v1/spaces/AAAA?key=k&token=t",
    ],
)
async def test_only_a_webhook_url_is_a_target(context, address) -> None:
    with pytest.raises(TargetError, match="webhook URL"):
        await output_class("googlechat")(context).validate(Target("googlechat", address))


def test_the_chat_api_host_means_google_chat() -> None:
    url = "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=k&token=t"
    assert infer_kind(url) == "googlechat"
