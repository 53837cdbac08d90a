"""ntfy's output against a local ntfy stand-in (tests/outputs/platforms.py) answering as
https://docs.ntfy.sh/publish/ documents (JSON publishing, limits, access tokens)."""

from __future__ import annotations

import pytest

from bot.errors import PermanentDeliveryError, TargetError
from bot.outputs import Envelope, Target, infer_kind, output_class
from tests.outputs.conftest import message_for
from tests.outputs.platforms import NTFY_TOKEN, NTFY_TOPIC, PlatformReceiver, ntfy_api, ntfy_error


@pytest.fixture
async def server():
    receiver = PlatformReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_published_as_json_with_markdown_title_and_tags(
    server, context, renderer, long_digest
) -> None:
    output = output_class("ntfy")(context)
    target = await output.validate(server.target("ntfy", "ntfy"))
    receipt = await output.send(
        target, message_for(renderer, long_digest, "ntfy"), envelope=Envelope("d")
    )
    requests = server.under("/ntfy")
    total = len(requests)
    assert receipt.parts == total > 1
    for number, request in enumerate(requests, start=1):
        assert request.path == "/ntfy/"  # JSON goes to the server's root, not the topic
        assert request.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"
        payload = request.json()
        assert payload["topic"] == NTFY_TOPIC and payload["markdown"] is True
        assert payload["tags"] == ["newspaper"]
        assert (
            payload["title"] == f"{long_digest.story} — Tuesday 2 December 2025 ({number}/{total})"
        )
        assert len(payload["message"].encode()) <= 4096
    # what the phone shows: each part as text, none turned into a file (ntfy's way with a
    # message over 4,096 bytes)
    shown = server.notifications
    assert [n["message"] for n in shown] == [r.json()["message"] for r in requests]
    assert not any("attachment" in n for n in shown)


async def test_no_token_no_authorization(server, context, renderer, digest) -> None:
    target = Target("ntfy", server.target("ntfy", "open", ntfy_api()).address)
    await output_class("ntfy")(context).send(
        target, message_for(renderer, digest, "ntfy"), envelope=Envelope("d")
    )
    assert all("Authorization" not in r.headers for r in server.under("/open"))


@pytest.mark.parametrize(
    ("status", "code", "error", "gone"),
    [
        (401, 40101, "unauthorized", True),
        (403, 40301, "forbidden", True),
        (413, 41301, "attachment too large, or bandwidth limit reached", False),
    ],
)
async def test_refusals(server, context, renderer, digest, status, code, error, gone) -> None:
    target = server.target("ntfy", "refused", ntfy_error(status, code, error))
    with pytest.raises(PermanentDeliveryError) as caught:
        await output_class("ntfy")(context).send(
            target, message_for(renderer, digest, "ntfy"), envelope=Envelope("d")
        )
    assert caught.value.gone is gone and error in caught.value.reason


@pytest.mark.parametrize(
    ("address", "secrets"),
    [
        ("https://ntfy.sh/", ()),
        ("https://ntfy.sh/has space", ()),
        ("https://ntfy.sh/topic", ("one", "two")),
    ],
)
async def test_bad_targets(context, address, secrets) -> None:
    with pytest.raises(TargetError):
        await output_class("ntfy")(context).validate(Target("ntfy", address, secrets))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("https://ntfy.sh/briefing-7f3a", "ntfy"),
        ("https://ntfy.example.org/briefing-7f3a", "ntfy"),  # a server of one's own
        ("https://ntfy.example.org/hooks/briefing", "generic"),  # not a topic URL
        ("https://ntfy.example.org/briefing?x=1", "generic"),
        ("https://example.org/briefing-7f3a", "generic"),
    ],
)
def test_a_topic_url_on_an_ntfy_server_is_an_ntfy_target(address, kind) -> None:
    assert infer_kind(address) == kind
