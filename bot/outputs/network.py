"""Outbound HTTP for webhook outputs: SSRF guard, egress allow-list, pinned connections,
status classification.

Every address a webhook host resolves to is checked when the connection is made, and the
connection goes to exactly the address that was checked (the guard *is* the resolver of
the connection pool), so DNS rebinding cannot slip a private address in between. The same
check refuses anything outside ``BRIEFING_EGRESS_ALLOWLIST`` when it is set.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.errors import PermanentDeliveryError, RetryableDeliveryError, TargetError
from bot.redact import mask_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Lookup = Callable[[str, int], Awaitable[list[str]]]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
ANSWER_LIMIT = 500
USER_AGENT = "briefing-bot"
JSON_HEADERS = {"content-type": "application/json", "user-agent": USER_AGENT}


def refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be a webhook target, or None if it is globally routable."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"{ip} is an IPv4-mapped address"
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and refusal(embedded):
            return f"{ip} embeds the non-public address {embedded}"
    for test, reason in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, test):
            return f"{ip} is a {reason} address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return f"{ip} is a shared (CGNAT) address"
    if not ip.is_global:
        return f"{ip} is not a globally routable address"
    return None


async def system_lookup(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (getaddrinfo), as connections do."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    return [str(info[4][0]) for info in infos]


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOWLIST_SETTING = "BRIEFING_EGRESS_ALLOWLIST"


@dataclass(frozen=True)
class EgressAllowlist:
    """Where the bot may connect: host names (``hooks.example.org``; ``*.example.org`` for
    its subdomains) and addresses or networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``).
    A name in the list allows every address it resolves to; any other name is allowed
    only if each of its addresses is in a listed network."""

    text: str
    hosts: frozenset[str]
    domains: tuple[str, ...]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, text: str) -> EgressAllowlist:
        """Read a comma-separated list; ``ValueError`` naming an entry that is neither a
        host name nor an address or network."""
        hosts: set[str] = set()
        domains: list[str] = []
        networks: list[IPNetwork] = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*.").removeprefix(".").rstrip(".")
            if not _HOST_NAME.fullmatch(name) or "/" in entry:
                raise ValueError(
                    f"{raw.strip()!r} is neither a host name nor an address or network"
                )
            if entry == name:
                hosts.add(name)
            else:
                domains.append(name)
        if not (hosts or domains or networks):
            raise ValueError("empty (leave it unset to allow every destination)")
        return cls(text.strip(), frozenset(hosts), tuple(domains), tuple(networks))

    def allows(self, host: str, address: str) -> bool:
        """Whether a connection to ``host`` at ``address`` is allowed."""
        name = host.lower().rstrip(".").strip("[]")
        if name in self.hosts or any(name.endswith("." + d) for d in self.domains):
            return True
        ip = ipaddress.ip_address(address.split("%")[0])
        return any(ip in network for network in self.networks)

    def check(self, host: str, addresses: list[str]) -> None:
        """Raise ``TargetError`` unless every address of ``host`` is allowed."""
        for address in addresses:
            if not self.allows(host, address):
                shown = host if host == address else f"{host!r} ({address})"
                raise TargetError(
                    f"refused connection to {shown}: not in {ALLOWLIST_SETTING} ({self.text})"
                )


_HOST_NAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*"
)


@dataclass(frozen=True)
class TargetPolicy:
    """Which webhook targets are allowed; ``allow_private`` lifts the SSRF rule, ``egress``
    (the allow-list, if set) confines every connection whatever the rule."""

    allow_private: bool = False
    lookup: Lookup = system_lookup
    egress: EgressAllowlist | None = None

    def check_url(self, url: str) -> tuple[str, str, int]:
        """Check a URL's form; return (scheme, host, port). Raise ``TargetError``."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise TargetError(f"invalid URL {mask_url(url)}: {exc}") from exc
        return self.check_parts(
            parts.scheme,
            parts.hostname,
            port,
            credentials=bool(parts.username or parts.password),
            url=url,
        )

    def check_parts(
        self, scheme: str, host: str | None, port: int | None, *, credentials: bool, url: str
    ) -> tuple[str, str, int]:
        """``check_url`` on a URL already taken apart."""
        allowed = ("https", "http") if self.allow_private else ("https",)
        if scheme not in allowed:
            raise TargetError(
                f"webhook URLs must use https (got {scheme or 'no scheme'!r}); "
                "set BRIEFING_ALLOW_PRIVATE_TARGETS=true for plain http on a private network"
            )
        if not host:
            raise TargetError(f"webhook URL {mask_url(url)} has no host")
        if credentials:
            raise TargetError("webhook URLs may not carry a user name or password")
        return scheme, host, port or (443 if scheme == "https" else 80)

    async def addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and check every address; raise ``TargetError`` if any is refused."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        found = [str(literal)] if literal is not None else await self.lookup(host, port)
        if not found:
            raise TargetError(f"{host!r} resolves to no address")
        if self.egress is not None:
            self.egress.check(host, found)
        if not self.allow_private:
            for address in found:
                reason = refusal(ipaddress.ip_address(address.split("%")[0]))
                if reason:
                    raise TargetError(
                        f"refused target {host!r}: {reason} (BRIEFING_ALLOW_PRIVATE_TARGETS is off)"
                    )
        return found

    async def check_egress(self, host: str, port: int) -> None:
        """The allow-list alone, for a connection the operator configured (the SMTP
        server): ``TargetError`` if ``host`` or any of its addresses is outside it."""
        if self.egress is None:
            return
        found = [host] if _is_ip_literal(host.strip("[]")) else await self.lookup(host, port)
        self.egress.check(host, [address.strip("[]") for address in found])

    async def check(self, url: str) -> None:
        """Full check of a webhook URL: form and every resolved address."""
        _, host, port = self.check_url(url)
        await self.addresses(host, port)

    async def check_request(self, url: httpx.URL) -> None:
        """The check made as a request is sent: its form, and its address if it names one
        (an IP literal never reaches the connection's resolver, and a numeric spelling such
        as 2130706433 would be refused as malformed rather than as what it is); a name is
        checked when the connection resolves it (``GuardedResolver``)."""
        _, host, port = self.check_parts(
            url.scheme, url.host, url.port, credentials=bool(url.userinfo), url=str(url)
        )
        if _is_ip_literal(host) or any(c.isdigit() for c in host.rsplit(".", 1)[-1]):
            await self.addresses(host, port)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that only ever hands out addresses the policy allows."""

    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results: list[ResolveResult] = []
        for address in await self._policy.addresses(host, port):
            ip = ipaddress.ip_address(address.split("%")[0])
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(ip),
                    port=port,
                    family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        return results

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class HttpLimits:
    connect_timeout: float = 5.0
    total_timeout: float = 20.0
    max_connections: int = 64
    answer_bytes: int = 64 * 1024


class PinnedTransport(httpx.AsyncBaseTransport):
    """httpx's transport over one aiohttp connection pool whose resolver is the SSRF guard
    (every request's URL is checked, every name checked as it resolves, and the connection
    goes to the address that was checked).

    Built for sending to receivers the bot does not trust: redirects are never followed,
    cookies never kept, proxy variables never read, and at most ``answer_bytes`` of an
    answer are read. httpx's own pool degrades at high concurrency; aiohttp's does not.
    """

    def __init__(self, policy: TargetPolicy, limits: HttpLimits) -> None:
        self.policy = policy
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=limits.connect_timeout, sock_read=limits.total_timeout
        )

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.policy),
            limit=self._limits.max_connections,
            limit_per_host=self._limits.max_connections,
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; raise ``TargetError`` for a target the policy refuses."""
        await self.policy.check_request(request.url)
        session = self._session or self._open()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw}
        try:
            async with session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._timeout,
            ) as response:
                answer = bytearray()
                while len(answer) < self._limits.answer_bytes:
                    chunk = await response.content.read(self._limits.answer_bytes - len(answer))
                    if not chunk:
                        break
                    answer += chunk
                return httpx.Response(
                    response.status,
                    headers=response.raw_headers,
                    content=bytes(answer),
                    request=request,
                )
        except aiohttp.InvalidURL as exc:
            raise httpx.InvalidURL(f"invalid URL: {exc}") from exc
        except aiohttp.ServerTimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class GuardedClient(httpx.AsyncClient):
    """The httpx client every webhook output sends through: each request goes straight to
    the ``PinnedTransport``, with none of the client machinery a sender to untrusted
    receivers must not have (redirects, cookies, authentication flows, proxies)."""

    def __init__(self, policy: TargetPolicy, limits: HttpLimits) -> None:
        self.pinned = PinnedTransport(policy, limits)
        super().__init__(
            transport=self.pinned,
            timeout=httpx.Timeout(limits.total_timeout, connect=limits.connect_timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def send(self, request: httpx.Request, **_: Any) -> httpx.Response:
        return await self.pinned.handle_async_request(request)


def build_client(policy: TargetPolicy, limits: HttpLimits) -> httpx.AsyncClient:
    """The guarded client for ``policy`` and ``limits``."""
    return GuardedClient(policy, limits)


def retry_after(response: httpx.Response, body: Any = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or Discord's ``retry_after``."""
    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
        return max(0.0, float(body["retry_after"]))
    header = response.headers.get("retry-after")
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = _http_date(header)
        date = response.headers.get("date")
        now = _http_date(date) if date else None
    except (TypeError, ValueError):
        return None
    if now is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _http_date(text: str) -> datetime:
    """An HTTP date; one with no zone (or ``-0000``) is GMT, as every HTTP date is."""
    moment = parsedate_to_datetime(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def answer_of(response: httpx.Response) -> str:
    """The receiver's answer, shortened for the delivery log (read as UTF-8, whatever the
    receiver declares: it is only shown)."""
    # one byte more than 500 characters can take, so that a longer answer is seen as longer
    text = response.content[: ANSWER_LIMIT * 4 + 1].decode("utf-8", "replace").strip()
    return text if len(text) <= ANSWER_LIMIT else text[:ANSWER_LIMIT] + "…"


def classify(response: httpx.Response) -> None:
    """Raise the delivery error a response means; return quietly on 2xx.

    3xx is never followed; 408, 429 and 5xx are retryable; 410 is permanent and means the
    target is gone; other 4xx are permanent.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    answer = answer_of(response)
    if 300 <= status < 400:
        location = response.headers.get("location", "?")
        raise PermanentDeliveryError(
            f"HTTP {status}: redirect to {location} not followed", status=status
        )
    body: Any = None
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
        except ValueError:
            body = None
    if status in (408, 429) or status >= 500:
        raise RetryableDeliveryError(
            f"HTTP {status}: {answer}", status=status, retry_after=retry_after(response, body)
        )
    raise PermanentDeliveryError(f"HTTP {status}: {answer}", status=status, gone=status == 410)


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: bytes,
    *,
    headers: dict[str, str] | None = None,
    total_timeout: float,
) -> httpx.Response:
    """POST a JSON body; translate network failures into delivery errors."""
    try:
        try:
            request = httpx.Request(
                "POST", url, content=payload, headers={**JSON_HEADERS, **(headers or {})}
            )
        except httpx.InvalidURL:
            if isinstance(client, GuardedClient):  # say what it is: 0177.0.0.1 is loopback
                await client.pinned.policy.check(url)
            raise
        async with asyncio.timeout(total_timeout):
            response = await client.send(request)
    except (TargetError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise PermanentDeliveryError(str(exc)) from exc
    except TimeoutError as exc:
        raise RetryableDeliveryError(f"no answer within {total_timeout:g} s") from exc
    except httpx.TimeoutException as exc:
        raise RetryableDeliveryError(f"timed out: {exc or type(exc).__name__}") from exc
    except (httpx.TransportError, aiohttp.ClientError, OSError) as exc:
        raise RetryableDeliveryError(f"connection failed: {exc or type(exc).__name__}") from exc
    classify(response)
    return response


async def send_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    content: bytes,
    *,
    headers: dict[str, str] | None = None,
    total_timeout: float,
) -> httpx.Response:
    """Send one request (a PUT, a form POST…) and return the answer whatever its status, for
    outputs that read a platform's own error answers before ``classify``; network failures
    become delivery errors as in ``post_json``."""
    try:
        try:
            request = httpx.Request(
                method, url, content=content, headers={"user-agent": USER_AGENT, **(headers or {})}
            )
        except httpx.InvalidURL:
            if isinstance(client, GuardedClient):
                await client.pinned.policy.check(url)
            raise
        async with asyncio.timeout(total_timeout):
            return await client.send(request)
    except (TargetError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise PermanentDeliveryError(str(exc)) from exc
    except TimeoutError as exc:
        raise RetryableDeliveryError(f"no answer within {total_timeout:g} s") from exc
    except httpx.TimeoutException as exc:
        raise RetryableDeliveryError(f"timed out: {exc or type(exc).__name__}") from exc
    except (httpx.TransportError, aiohttp.ClientError, OSError) as exc:
        raise RetryableDeliveryError(f"connection failed: {exc or type(exc).__name__}") from exc
