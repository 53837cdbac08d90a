"""Who is asking: the client's address, from ``X-Forwarded-For`` only when the request
comes through a proxy listed in ``BRIEFING_TRUSTED_PROXIES``."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from fastapi import Request

from bot.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def trusted_networks(setting: str) -> tuple[Network, ...]:
    """``BRIEFING_TRUSTED_PROXIES`` (addresses or CIDRs, comma-separated) as networks;
    ``ConfigError`` naming an entry that is neither."""
    networks = []
    for entry in (part.strip() for part in setting.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(
                f"BRIEFING_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Request, trusted_proxies: str) -> str:
    """The peer's address; behind trusted proxies, the first address in
    ``X-Forwarded-For``, read from the right, that is not one of them."""
    peer = request.client.host if request.client else "unknown"
    networks = trusted_networks(trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    forwarded = [
        part.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for part in header.split(",")
        if part.strip()
    ]
    for address in reversed(forwarded):
        if not _trusted(address, networks):
            return address[:64]
    return peer
