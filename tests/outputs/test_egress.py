"""BRIEFING_EGRESS_ALLOWLIST: a connection anywhere else is refused before it is made, for
webhooks (through the guarded transport, whatever the SSRF rule) and for the SMTP server."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError, PermanentDeliveryError, TargetError
from bot.outputs import Envelope, Target, make_context, output_class
from bot.outputs.network import EgressAllowlist
from bot.settings import get_settings
from tests.outputs.conftest import message_for, settings_for
from tests.receivers import reply, start_smtp


def test_entries_are_hosts_addresses_and_networks() -> None:
    allow = EgressAllowlist.parse(
        " hooks.example.org, *.chat.example.net,127.0.0.1 , 10.0.0.0/8,::1"
    )
    assert allow.allows("hooks.example.org", "203.0.113.9")  # a listed name: any address
    assert allow.allows("a.b.chat.example.net", "203.0.113.9")
    assert not allow.allows("chat.example.net.evil.org", "203.0.113.9")
    assert not allow.allows("example.org", "203.0.113.9")
    assert allow.allows("anything.example", "10.20.30.40") and allow.allows("::1", "::1")
    assert not allow.allows("127.0.0.2", "127.0.0.2")
    for bad, named in (("https://x.org", "https://x.org"), ("a b", "a b"), (" , ", "empty")):
        with pytest.raises(ValueError, match=named):
            EgressAllowlist.parse(bad)


def test_a_bad_setting_is_an_error_naming_it(monkeypatch) -> None:
    monkeypatch.setenv("BRIEFING_EGRESS_ALLOWLIST", "127.0.0.1,not a host")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="BRIEFING_EGRESS_ALLOWLIST.*'not a host'"):
            get_settings()
    finally:
        get_settings.cache_clear()


async def test_webhooks_go_only_where_the_list_allows(tmp_path, receiver, renderer, digest) -> None:
    url = receiver.on("/hook", reply(200, "ok"))
    message = message_for(renderer, digest, "slack")
    for allowlist, allowed in (("127.0.0.1", True), ("localhost", False), ("10.0.0.0/8", False)):
        context = make_context(settings_for(tmp_path, egress_allowlist=allowlist))
        output = output_class("slack")(context)
        target = Target("slack", url)
        try:
            if allowed:
                await output.validate(target)
                receipt = await output.send(target, message, envelope=Envelope("dlv_1"))
                assert receipt.status == "200"
            else:
                with pytest.raises(TargetError, match="not in BRIEFING_EGRESS_ALLOWLIST"):
                    await output.validate(target)
                with pytest.raises(PermanentDeliveryError, match=f"not in BRIEF.*{allowlist}"):
                    await output.send(target, message, envelope=Envelope("dlv_2"))
        finally:
            await output.aclose()
            await context.aclose()
    assert len(receiver.hits("/hook")) == 1  # only the allowed one connected


async def test_a_name_is_checked_by_its_addresses(tmp_path, receiver, renderer, digest) -> None:
    url = receiver.on("/named", reply(200, "ok")).replace("127.0.0.1", "localhost")
    context = make_context(settings_for(tmp_path, egress_allowlist="localhost"))
    output = output_class("mattermost")(context)
    try:
        message = message_for(renderer, digest, "mattermost")
        receipt = await output.send(Target("mattermost", url), message, envelope=Envelope("d"))
        assert receipt.status == "200"
    finally:
        await output.aclose()
        await context.aclose()


async def test_the_smtp_server_outside_the_list_is_the_operators_mistake(
    tmp_path, renderer, digest
) -> None:
    controller, handler = start_smtp()
    try:
        for allowlist, allowed in (("10.0.0.0/8", False), ("127.0.0.1", True)):
            settings = settings_for(
                tmp_path, smtp_host="127.0.0.1", smtp_port=controller.port,
                smtp_security="none", egress_allowlist=allowlist,
            )  # fmt: skip
            context = make_context(settings)
            output = output_class("email")(context)
            target = Target("email", "reader@example.org")
            message = message_for(renderer, digest, "email")
            try:
                if allowed:
                    await output.send(target, message, envelope=Envelope("dlv_ok"))
                else:
                    with pytest.raises(
                        ConfigError, match="BRIEFING_SMTP_HOST.*not in BRIEFING_EGRESS"
                    ):
                        await output.send(target, message, envelope=Envelope("dlv_no"))
                    assert handler.messages == []
            finally:
                await output.aclose()
                await context.aclose()
        assert len(handler.messages) == 1
    finally:
        controller.stop()
