"""The network guard as an attacker meets it: every address checked as the connection is
made, the connection pinned to it, no proxy, no credentials, no odd spelling let through.

Everything goes through real sockets on this machine's loopback; tripwire listeners count
every connection they are offered, so "refused" means nothing reached them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator

import pytest

from bot.errors import PermanentDeliveryError, TargetError
from bot.outputs import Envelope, HttpLimits, Message, OutputContext, Target, output_class
from bot.outputs.network import TargetPolicy, build_client, post_json, refusal
from tests.outputs.conftest import FAST, settings_for
from tests.outputs.network_doubles import PUBLIC, SENDERS, Resolver, Tripwire, V6Receiver
from tests.receivers import HttpReceiver

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture
async def tripwire() -> AsyncIterator[Tripwire]:
    wire = Tripwire()
    await wire.start()
    yield wire
    await wire.stop()


def context_for(tmp_path, policy: TargetPolicy, limits: HttpLimits = FAST) -> OutputContext:
    return OutputContext(settings=settings_for(tmp_path), policy=policy, limits=limits)


def chat_message(digest) -> Message:
    return Message(digest=digest, bodies={"chat": "Briefing\nThe talks went on."})


# ------------------------------------------------------------ at connect time


async def test_resolver_refuses_a_rebound_name_at_connect_time(tmp_path, tripwire, digest) -> None:
    """Public when the subscription is validated, loopback when the connection resolves it
    at send time: the connection's own resolver refuses, and nothing reaches the listener."""
    dns = Resolver([PUBLIC], ["127.0.0.1"])
    ctx = context_for(tmp_path, TargetPolicy(allow_private=False, lookup=dns))
    url = f"https://rebind.example:{tripwire.port}/hooks/x"
    output = output_class("mattermost")(ctx)
    try:
        await output.validate(Target("mattermost", url))
        with pytest.raises(PermanentDeliveryError, match="127.0.0.1 is a loopback address"):
            await output.send(
                Target("mattermost", url), chat_message(digest), envelope=Envelope("d")
            )
    finally:
        await ctx.aclose()
    assert tripwire.accepted == 0
    assert len(dns.asked) == 2  # validation, then the connection's own lookup (one per send)


@pytest.mark.parametrize(
    "answer",
    [["127.0.0.1"], ["::1"], [PUBLIC, "127.0.0.1"], ["::ffff:127.0.0.1"], ["fe80::1%lo"]],
    ids=["v4", "v6", "one-of-two", "mapped", "scoped"],
)
async def test_connection_is_refused_if_any_address_is_private(tripwire, answer) -> None:
    dns = Resolver(answer)
    client = build_client(TargetPolicy(allow_private=False, lookup=dns), FAST)
    try:
        with pytest.raises(PermanentDeliveryError, match="refused target 'evil.example'"):
            await post_json(
                client, f"https://evil.example:{tripwire.port}/x", b"{}", total_timeout=2
            )
    finally:
        await client.aclose()
    assert tripwire.accepted == 0
    assert dns.asked == [("evil.example", tripwire.port)]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("[::1]", "::1 is a loopback address"),
        ("[::]", ":: is a unspecified address"),
        ("2130706433", "127.0.0.1 is a loopback address"),
        ("0177.0.0.1", "127.0.0.1 is a loopback address"),
        ("0x7f.1", "127.0.0.1 is a loopback address"),
    ],
)
@pytest.mark.parametrize("send", SENDERS.values(), ids=SENDERS.keys())
async def test_every_request_is_checked_even_without_the_outputs_check(
    tripwire, host, reason, send
) -> None:
    """Addresses written in the URL never reach the connection's resolver: the client
    checks them itself, whatever spelling they take."""
    client = build_client(TargetPolicy(allow_private=False), FAST)
    try:
        with pytest.raises(PermanentDeliveryError, match=re.escape(reason)):
            await send(client, f"https://{host}:{tripwire.port}/x", b"{}", total_timeout=2)
    finally:
        await client.aclose()
    assert tripwire.accepted == 0


@pytest.mark.parametrize("answer", ["::1", "::1%lo"])
async def test_connection_is_pinned_to_the_checked_ipv6_address(answer) -> None:
    receiver = V6Receiver()
    try:
        await receiver.start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    dns = Resolver([answer])
    client = build_client(TargetPolicy(allow_private=True, lookup=dns), FAST)
    try:
        response = await post_json(
            client, f"http://hook.example:{receiver.port}/v6", b"{}", total_timeout=2
        )
    finally:
        await client.aclose()
        assert receiver.runner is not None
        await receiver.runner.cleanup()
    assert response.status_code == 200
    (request,) = receiver.requests
    assert request.headers["Host"] == f"hook.example:{receiver.port}"
    assert dns.asked == [("hook.example", receiver.port)]  # once, as the connection is made


# ------------------------------------------------------------ proxies


async def test_proxy_variables_are_ignored(
    monkeypatch, tmp_path, tripwire, receiver: HttpReceiver, digest
) -> None:
    """A proxy from the environment would carry traffic past the pinned resolver: none is used."""
    proxy = f"http://127.0.0.1:{tripwire.port}"
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    dns = Resolver(["127.0.0.1"])
    ctx = context_for(tmp_path, TargetPolicy(allow_private=True, lookup=dns))
    url = receiver.on("/through").replace("127.0.0.1", "hook.example")
    try:
        receipt = await output_class("mattermost")(ctx).send(
            Target("mattermost", url), chat_message(digest), envelope=Envelope("d")
        )
    finally:
        await ctx.aclose()
    assert receipt.status == "200"
    assert len(receiver.hits("/through")) == 1
    assert tripwire.accepted == 0


# ------------------------------------------------------------ URLs and addresses


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cr3t@hooks.example.org/x",
        "https://user@hooks.example.org/x",
        "https://:s3cr3t@hooks.example.org/x",
    ],
)
async def test_credentials_in_urls_are_refused_before_any_lookup(url) -> None:
    dns = Resolver([PUBLIC])
    with pytest.raises(TargetError, match="may not carry a user name or password") as caught:
        await TargetPolicy(lookup=dns).check(url)
    assert "s3cr3t" not in str(caught.value)
    assert dns.asked == []


async def test_credentials_never_reach_the_receiver(
    tmp_path, receiver: HttpReceiver, digest
) -> None:
    ctx = context_for(tmp_path, TargetPolicy(allow_private=True))
    url = receiver.on("/creds").replace("http://", "http://user:s3cr3t@")
    try:
        with pytest.raises(PermanentDeliveryError, match="user name or password"):
            await output_class("mattermost")(ctx).send(
                Target("mattermost", url), chat_message(digest), envelope=Envelope("d")
            )
    finally:
        await ctx.aclose()
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("url", "allow_private", "message"),
    [
        ("hooks.example.org/x", False, "must use https (got 'no scheme')"),
        ("ftp://hooks.example.org/x", True, "must use https (got 'ftp')"),
        ("http://hooks.example.org/x", False, "must use https (got 'http')"),
        ("https:///x", False, "has no host"),
        ("https://hooks.example.org:99999/x", False, "invalid URL"),
        ("https://[::1/x", False, "invalid URL"),
    ],
)
async def test_malformed_urls_are_refused_with_the_reason(url, allow_private, message) -> None:
    dns = Resolver([PUBLIC])
    with pytest.raises(TargetError, match=re.escape(message)):
        await TargetPolicy(allow_private=allow_private, lookup=dns).check(url)
    assert dns.asked == []


@pytest.mark.parametrize("send", SENDERS.values(), ids=SENDERS.keys())
async def test_a_url_the_client_cannot_send_is_a_permanent_failure(receiver, send) -> None:
    dns = Resolver(["127.0.0.1"])
    client = build_client(TargetPolicy(allow_private=True, lookup=dns), FAST)
    try:
        with pytest.raises(PermanentDeliveryError, match="non-printable"):
            await send(client, f"http://hook\x00example:{receiver.port}/x", b"{}", total_timeout=2)
    finally:
        await client.aclose()
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("url", "allow_private", "asked"),
    [
        ("https://hooks.example.org/x", False, ("hooks.example.org", 443)),
        ("https://hooks.example.org:8443/x", False, ("hooks.example.org", 8443)),
        ("https://hooks.example.org/x", True, ("hooks.example.org", 443)),
        ("http://hooks.example.org/x", True, ("hooks.example.org", 80)),
    ],
)
async def test_the_lookup_is_asked_for_the_port_the_connection_uses(
    url, allow_private, asked
) -> None:
    dns = Resolver([PUBLIC])
    await TargetPolicy(allow_private=allow_private, lookup=dns).check(url)
    assert dns.asked == [asked]


async def test_literal_addresses_need_no_lookup() -> None:
    dns = Resolver(["127.0.0.1"])
    await TargetPolicy(lookup=dns).check(f"https://{PUBLIC}/x")
    await TargetPolicy(allow_private=True, lookup=dns).check("https://127.0.0.1:9/x")
    assert dns.asked == []


async def test_a_name_with_no_address_is_refused() -> None:
    with pytest.raises(TargetError, match="'void.example' resolves to no address"):
        await TargetPolicy(allow_private=True, lookup=Resolver([])).check("https://void.example/x")


async def test_the_default_policy_refuses_private_targets() -> None:
    with pytest.raises(TargetError, match="loopback"):
        await TargetPolicy().check("https://127.0.0.1/x")
    with pytest.raises(TargetError, match="must use https"):
        await TargetPolicy().check(f"http://{PUBLIC}/x")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        (
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
            "2001:0:4136:e378:8000:63bf:f5ff:fffe embeds the non-public address 10.0.0.1",
        ),
        ("2002:a00:1::", "2002:a00:1:: embeds the non-public address 10.0.0.1"),  # 6to4
        ("64:ff9b::7f00:1", "64:ff9b::7f00:1 embeds the non-public address 127.0.0.1"),  # NAT64
        ("::ffff:8.8.8.8", "::ffff:808:808 is an IPv4-mapped address"),
        ("100.127.255.255", "100.127.255.255 is a shared (CGNAT) address"),
        ("fe80::1%eth0", "fe80::1%eth0 is a link-local address"),
    ],
)
def test_addresses_hiding_a_private_one_are_refused(address, reason) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "100.128.0.1", "2606:4700::6440:1", "2002:808:808::1", "2a00:1450::1"]
)
def test_public_addresses_are_allowed(address) -> None:
    assert refusal(ipaddress.ip_address(address)) is None
