from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bot.errors import PermanentDeliveryError, TargetError
from bot.outputs import Envelope, OutputContext, Target, TargetPolicy, output_class
from bot.outputs.network import refusal
from tests.outputs.conftest import FAST, message_for, settings_for
from tests.outputs.network_doubles import Tripwire


@pytest.fixture
async def counter() -> AsyncIterator[Tripwire]:
    c = Tripwire()
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def guarded(tmp_path) -> AsyncIterator[OutputContext]:
    ctx = OutputContext(
        settings=settings_for(tmp_path, allow_private_targets=False),
        policy=TargetPolicy(allow_private=False),
        limits=FAST,
    )
    yield ctx
    await ctx.aclose()


LOCAL = [
    ("127.0.0.1", "loopback"),
    ("[::1]", "loopback"),
    ("2130706433", "loopback"),  # decimal spelling of 127.0.0.1
    ("0177.0.0.1", "loopback"),  # octal spelling
    ("0x7f.0.0.1", "loopback"),  # hexadecimal spelling
    ("[::ffff:127.0.0.1]", "IPv4-mapped"),
    ("localhost", "loopback"),  # a name that resolves to a private address
]
REMOTE = [
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("[fc00::1]", "private"),
    ("[fe80::1]", "link-local"),
    ("[ff02::1]", "multicast"),
    ("[::]", "unspecified"),
    ("[64:ff9b::a00:1]", "embeds the non-public address 10.0.0.1"),
    ("[2002:7f00:1::]", "embeds the non-public address 127.0.0.1"),
]


@pytest.mark.parametrize(("host", "reason"), LOCAL, ids=[h for h, _ in LOCAL])
async def test_local_addresses_are_refused_before_any_packet(
    guarded, counter, renderer, digest, host, reason
) -> None:
    url = f"https://{host}:{counter.port}/hook"
    output = output_class("slack")(guarded)
    with pytest.raises(TargetError, match=reason):
        await output.validate(Target("slack", url))
    with pytest.raises(PermanentDeliveryError, match=reason):
        await output.send(
            Target("slack", url), message_for(renderer, digest, "slack"), envelope=Envelope("x")
        )
    assert counter.accepted == 0


@pytest.mark.parametrize(("host", "reason"), REMOTE, ids=[h for h, _ in REMOTE])
async def test_non_public_addresses_are_refused(guarded, host, reason) -> None:
    with pytest.raises(TargetError, match=f"refused target .*{re.escape(reason)}"):
        await output_class("discord")(guarded).validate(
            Target("discord", f"https://{host}/api/webhooks/1/x")
        )


async def test_plain_http_is_refused_without_the_private_switch(guarded) -> None:
    with pytest.raises(TargetError, match="must use https"):
        await output_class("mattermost")(guarded).validate(
            Target("mattermost", "http://example.org/hooks/x")
        )


def test_public_addresses_pass() -> None:
    import ipaddress

    for address in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"]:
        assert refusal(ipaddress.ip_address(address)) is None


async def test_dns_rebinding_is_caught_at_send_time(tmp_path, counter, renderer, digest) -> None:
    """The name resolves to a public address when checked, then to 127.0.0.1."""
    answers = iter([["93.184.215.14"], ["127.0.0.1"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    policy = TargetPolicy(allow_private=False, lookup=rebinding)
    ctx = OutputContext(settings=settings_for(tmp_path), policy=policy, limits=FAST)
    output = output_class("mattermost")(ctx)
    url = f"https://rebind.example:{counter.port}/hooks/x"
    try:
        await output.validate(Target("mattermost", url))  # public: accepted
        with pytest.raises(PermanentDeliveryError, match="127.0.0.1 is a loopback"):
            await output.send(
                Target("mattermost", url),
                message_for(renderer, digest, "mattermost"),
                envelope=Envelope("x"),
            )
    finally:
        await ctx.aclose()
    assert counter.accepted == 0


async def test_connection_goes_to_the_checked_address(tmp_path, receiver, renderer, digest) -> None:
    """The connection is pinned to what the guard resolved, whatever the system DNS says."""
    seen: list[str] = []

    async def pinned(host: str, port: int) -> list[str]:
        seen.append(host)
        return ["127.0.0.1"]

    ctx = OutputContext(
        settings=settings_for(tmp_path),
        policy=TargetPolicy(allow_private=True, lookup=pinned),
        limits=FAST,
    )
    try:
        url = f"http://no-such-host.invalid:{receiver.port}/pinned"
        receipt = await output_class("mattermost")(ctx).send(
            Target("mattermost", url),
            message_for(renderer, digest, "mattermost"),
            envelope=Envelope("x"),
        )
    finally:
        await ctx.aclose()
    assert receipt.status == "200"
    assert seen and set(seen) == {"no-such-host.invalid"}
    assert receiver.hits("/pinned")[0].headers["Host"] == f"no-such-host.invalid:{receiver.port}"


async def test_unresolvable_host_is_a_clear_error(guarded) -> None:
    with pytest.raises(TargetError, match="cannot resolve 'no-such-host.invalid'"):
        await output_class("slack")(guarded).validate(
            Target("slack", "https://no-such-host.invalid/x")
        )
