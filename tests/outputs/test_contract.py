"""One suite every output passes: found by entry point, delivers, classifies failures."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from bot.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    TargetError,
)
from bot.outputs import (
    Envelope,
    HttpLimits,
    Output,
    OutputContext,
    Target,
    TargetPolicy,
    output_class,
)
from bot.outputs.registry import output_classes
from bot.outputs.webhooks import new_secret
from tests.outputs.conftest import FAST, message_for, settings_for
from tests.receivers import reply, reply_json

KINDS = ["generic", "slack", "discord", "teams", "mattermost", "email"]


@dataclass
class Channel:
    output: Output
    ok: Target
    retryable: Target
    permanent: Target
    invalid: Target
    delivered: callable  # type: ignore[valid-type]


@pytest.fixture
async def channel(request, tmp_path, receiver, smtp):
    kind = request.param
    if kind == "email":
        port, handler = smtp
        handler.refusals = {"later": "452 4.2.2 Mailbox full", "never": "550 5.1.1 Unknown user"}
        ctx = OutputContext(
            settings=settings_for(
                tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
            ),
            policy=TargetPolicy(),
            limits=HttpLimits(total_timeout=5),
        )
        made = Channel(
            output_class(kind)(ctx),
            Target(kind, "ok@example.org"),
            Target(kind, "later@example.org"),
            Target(kind, "never@example.org"),
            Target(kind, "not an address"),
            lambda: len(handler.messages),
        )
    else:
        ctx = OutputContext(
            settings=settings_for(tmp_path), policy=TargetPolicy(allow_private=True), limits=FAST
        )
        secrets = (new_secret(),) if kind == "generic" else ()
        later = (
            reply_json(429, {"retry_after": 2.5})
            if kind == "discord"
            else reply(429, "slow down", {"Retry-After": "2"})
        )
        made = Channel(
            output_class(kind)(ctx),
            Target(kind, receiver.on("/ok"), secrets),
            Target(kind, receiver.on("/later", later), secrets),
            Target(kind, receiver.on("/never", reply(404, "no_service")), secrets),
            Target(kind, "gopher://127.0.0.1/x", secrets),
            lambda: len(receiver.hits("/ok")),
        )
    yield made
    await made.output.aclose()
    await ctx.aclose()


@pytest.mark.parametrize("channel", KINDS, indirect=True)
async def test_delivers(channel: Channel, renderer, digest) -> None:
    kind = channel.ok.kind
    target = await channel.output.validate(channel.ok)
    receipt = await channel.output.send(
        target, message_for(renderer, digest, kind), envelope=Envelope("dlv_ok")
    )
    assert receipt.status in {"200", "250"} and receipt.parts >= 1
    assert channel.delivered() == receipt.parts


@pytest.mark.parametrize("channel", KINDS, indirect=True)
async def test_retryable_failure(channel: Channel, renderer, digest) -> None:
    kind = channel.ok.kind
    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.output.send(
            channel.retryable, message_for(renderer, digest, kind), envelope=Envelope("d")
        )
    if kind == "discord":
        assert caught.value.retry_after == 2.5
    elif kind != "email":
        assert caught.value.retry_after == 2.0 and caught.value.status == 429


@pytest.mark.parametrize("channel", KINDS, indirect=True)
async def test_permanent_failure(channel: Channel, renderer, digest) -> None:
    kind = channel.ok.kind
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.output.send(
            channel.permanent, message_for(renderer, digest, kind), envelope=Envelope("d")
        )
    assert not caught.value.gone and caught.value.reason


@pytest.mark.parametrize("channel", KINDS, indirect=True)
async def test_invalid_target_is_refused(channel: Channel) -> None:
    with pytest.raises(TargetError):
        await channel.output.validate(channel.invalid)


@pytest.mark.parametrize("kind", KINDS[:-1])
@pytest.mark.parametrize(
    ("answer", "error", "gone"),
    [
        (reply(500, "boom"), RetryableDeliveryError, False),
        (
            reply(
                503,
                "busy",
                {
                    "Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT",
                    "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
                },
            ),
            RetryableDeliveryError,
            False,
        ),
        (reply(408, "timeout"), RetryableDeliveryError, False),
        (reply(410, "gone"), PermanentDeliveryError, True),
        (reply(400, "invalid_payload"), PermanentDeliveryError, False),
        (reply(302, "", {"Location": "https://example.org/"}), PermanentDeliveryError, False),
    ],
)
async def test_status_handling(
    kind, answer, error, gone, receiver, tmp_path, renderer, digest
) -> None:
    ctx = OutputContext(
        settings=settings_for(tmp_path), policy=TargetPolicy(allow_private=True), limits=FAST
    )
    url = receiver.on("/status", answer)
    secrets = (new_secret(),) if kind == "generic" else ()
    try:
        with pytest.raises(error) as caught:
            await output_class(kind)(ctx).send(
                Target(kind, url, secrets),
                message_for(renderer, digest, kind),
                envelope=Envelope("d"),
            )
    finally:
        await ctx.aclose()
    assert getattr(caught.value, "gone", False) is gone
    if "503" in caught.value.reason:
        assert caught.value.retry_after == 30.0


@pytest.mark.parametrize("kind", KINDS[:-1])
async def test_dropped_connection_is_retryable(kind, receiver, context, renderer, digest) -> None:
    from tests.receivers import drop

    url = receiver.on("/drop", drop())
    secrets = (new_secret(),) if kind == "generic" else ()
    with pytest.raises(RetryableDeliveryError, match="connection failed|timed out"):
        await output_class(kind)(context).send(
            Target(kind, url, secrets), message_for(renderer, digest, kind), envelope=Envelope("d")
        )


def test_every_builtin_is_registered_by_entry_point() -> None:
    assert set(KINDS) <= set(output_classes())


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown output kind 'pager' \(known: discord, email, generic"
    ):
        output_class("pager")


PLUGIN = """
from bot.outputs import Output, Receipt


class PigeonOutput(Output):
    name = "pigeon"
    formats = ("text",)
    sent = []

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        PigeonOutput.sent.append((target.address, message.body("text")[:20]))
        return Receipt(status="landed")
"""


async def test_third_party_output_plugs_in_through_entry_points(
    tmp_path, monkeypatch, context, renderer, digest
) -> None:
    (tmp_path / "pigeon_output.py").write_text(PLUGIN, encoding="utf-8")
    dist = tmp_path / "pigeon_output-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pigeon-output\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[briefing.outputs]\npigeon = pigeon_output:PigeonOutput\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    output_classes.cache_clear()
    try:
        cls = output_class("pigeon")
        receipt = await cls(context).send(
            Target("pigeon", "loft"),
            message_for(renderer, digest, "pigeon"),
            envelope=Envelope("d"),
        )
        assert receipt.status == "landed" and cls.sent == [("loft", digest.story.upper()[:20])]  # type: ignore[attr-defined]
    finally:
        monkeypatch.delitem(sys.modules, "pigeon_output", raising=False)
        output_classes.cache_clear()


def test_delivery_errors_share_one_tree() -> None:
    assert issubclass(RetryableDeliveryError, DeliveryError) and issubclass(
        PermanentDeliveryError, DeliveryError
    )
