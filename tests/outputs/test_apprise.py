"""The Apprise bridge against a local ``json://`` receiver (Apprise's JSON service posts
``{"version", "title", "message", "type"}``: https://github.com/caronc/apprise/wiki/Notify_Custom_JSON).
Skipped where Apprise is not installed (it is in the dev extra)."""

from __future__ import annotations

import sys

import pytest

from bot.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError, TargetError
from bot.outputs import Envelope, Target, infer_kind, output_class
from tests.outputs.conftest import message_for
from tests.outputs.platforms import PlatformReceiver
from tests.receivers import reply

apprise = pytest.importorskip("apprise")


@pytest.fixture
async def endpoint():
    server = PlatformReceiver()
    await server.start()
    yield server
    await server.stop()


async def test_the_digest_goes_out_as_markdown_with_a_title(
    endpoint, context, renderer, digest
) -> None:
    output = output_class("apprise")(context)
    target = await output.validate(endpoint.target("apprise", "hook"))
    receipt = await output.send(
        target, message_for(renderer, digest, "apprise"), envelope=Envelope("d")
    )
    (request,) = endpoint.under("/hook")
    payload = request.json()
    assert receipt.status == "sent" and receipt.parts == 1
    assert payload["title"] == f"{digest.story} — Tuesday 2 December 2025"
    assert payload["message"].startswith("Situation as of 2 December 2025")
    assert "New since" in payload["message"] and "**At a glance**" in payload["message"]


def test_parts_fit_the_service_body_limit(renderer, long_digest, context) -> None:
    output = output_class("apprise")(context)
    plugin = apprise.Apprise.instantiate(
        "pover://userkey0123456789abcdefghijk@apptoken0123456789abcdefghij"
    )
    title, bodies = output._parts(message_for(renderer, long_digest, "apprise"), plugin)
    assert plugin.body_maxlen == 1024 and len(bodies) > 10
    assert all(len(body) <= plugin.body_maxlen for body in bodies)


def test_preview_payloads_are_what_apprise_is_handed(renderer, long_digest, context) -> None:
    from bot.outputs.apprise_bridge import BODY_LIMIT

    output = output_class("apprise")(context)
    payloads = output.payloads(message_for(renderer, long_digest, "apprise"))
    total = len(payloads)
    assert total > 1 and all(len(p["body"]) <= BODY_LIMIT for p in payloads)
    assert [p["title"] for p in payloads] == [
        f"{long_digest.story} — Tuesday 2 December 2025 ({n}/{total})" for n in range(1, total + 1)
    ]


@pytest.mark.parametrize("status", [400, 404, 500])
async def test_any_failure_is_retryable(endpoint, context, renderer, digest, status) -> None:
    target = endpoint.target("apprise", "fail", reply(status, "no"))
    with pytest.raises(RetryableDeliveryError, match="Apprise could not deliver"):
        await output_class("apprise")(context).send(
            target, message_for(renderer, digest, "apprise"), envelope=Envelope("d")
        )


async def test_a_url_apprise_cannot_use_is_refused(context, renderer, digest) -> None:
    output = output_class("apprise")(context)
    with pytest.raises(TargetError, match="nosuchservice://"):
        await output.validate(Target("apprise", "nosuchservice://host/x"))
    with pytest.raises(PermanentDeliveryError):
        await output.send(
            Target("apprise", "nosuchservice://host/x"),
            message_for(renderer, digest, "apprise"),
            envelope=Envelope("d"),
        )


async def test_the_egress_allow_list_confines_apprise_too(tmp_path, renderer, digest) -> None:
    from bot.outputs import HttpLimits, OutputContext, TargetPolicy
    from bot.outputs.network import EgressAllowlist
    from tests.outputs.conftest import settings_for

    confined = OutputContext(
        settings=settings_for(tmp_path),
        policy=TargetPolicy(allow_private=True, egress=EgressAllowlist.parse("127.0.0.1")),
        limits=HttpLimits(),
    )
    output = output_class("apprise")(confined)
    await output.validate(Target("apprise", "json://127.0.0.1:9/x"))  # a host it can check
    with pytest.raises(TargetError, match="not in BRIEFING_EGRESS_ALLOWLIST"):
        await output.validate(Target("apprise", "json://192.0.2.7:9/x"))  # outside the list
    cloud = "pover://userkey0123456789abcdefghijk@apptoken0123456789abcdefghij"
    with pytest.raises(TargetError, match="BRIEFING_EGRESS_ALLOWLIST") as caught:
        await output.validate(Target("apprise", cloud))  # a host its URL does not name
    assert "apptoken0123" not in str(caught.value)
    with pytest.raises(PermanentDeliveryError, match="BRIEFING_EGRESS_ALLOWLIST"):
        await output.send(
            Target("apprise", cloud),
            message_for(renderer, digest, "apprise"),
            envelope=Envelope("d"),
        )
    await confined.aclose()


async def test_without_apprise_a_config_error_says_how_to_install_it(
    context, monkeypatch, renderer, digest
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if it were not installed
    output = output_class("apprise")(context)  # the bot still starts…
    with pytest.raises(ConfigError, match=r"pip install 'briefing-bot\[apprise\]'"):
        await output.validate(Target("apprise", "json://127.0.0.1/x"))  # …its targets fail
    with pytest.raises(ConfigError, match="pip install"):
        await output.send(
            Target("apprise", "json://127.0.0.1/x"),
            message_for(renderer, digest, "apprise"),
            envelope=Envelope("d"),
        )


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("tgram://123456789:AAE-token/-1001", "apprise"),
        ("mailto://user:pass@gmail.com", "apprise"),
        ("json://hooks.example.org/x", "apprise"),
        ("mailto:reader@example.org", "email"),
        ("https://example.org/hook", "generic"),
    ],
)
def test_apprise_urls_are_inferred(address, kind) -> None:
    assert infer_kind(address) == kind
