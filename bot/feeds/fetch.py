"""Fetch a feed once: through the webhooks' SSRF guard (connections pinned to the checked
address), conditional (ETag, Last-Modified), bounded in time and size, redirects followed a
few times and each one checked again."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp
import httpx

from bot.errors import BriefingError, TargetError
from bot.feeds.config import MAX_BYTES, FeedConfig
from bot.outputs.network import USER_AGENT, HttpLimits, TargetPolicy, build_client, refusal
from bot.redact import mask_url

MAX_REDIRECTS = 5
ACCEPT = (
    "application/feed+json, application/atom+xml, application/rss+xml, application/rdf+xml, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)


class FeedError(BriefingError):
    """A feed could not be fetched or read; the message says why, for the feed's last error."""


@dataclass(frozen=True)
class Fetched:
    """A feed's answer: its body (None when unchanged since the last poll) and validators."""

    body: bytes | None
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FeedPolicy(TargetPolicy):
    """The webhook SSRF rule for feeds: http or https, every address globally routable
    unless the feed says ``allow_private: true``."""

    def check_parts(
        self, scheme: str, host: str | None, port: int | None, *, credentials: bool, url: str
    ) -> tuple[str, str, int]:
        if scheme not in ("http", "https"):
            raise TargetError(f"feed URLs use http or https (got {scheme or 'no scheme'!r})")
        if not host:
            raise TargetError(f"feed URL {mask_url(url)} has no host")
        if credentials:
            raise TargetError("feed URLs may not carry a user name or password")
        return scheme, host, port or (443 if scheme == "https" else 80)

    async def addresses(self, host: str, port: int) -> list[str]:
        if self.allow_private:
            return await super().addresses(host, port)
        found = await replace(self, allow_private=True).addresses(host, port)
        for address in found:
            reason = refusal(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                raise TargetError(
                    f"refused {host!r}: {reason} (a feed may reach it only with "
                    "allow_private: true in feeds.yaml)"
                )
        return found


async def fetch(
    feed: FeedConfig, *, etag: str | None = None, last_modified: str | None = None
) -> Fetched:
    """Fetch ``feed`` once; raise ``FeedError`` saying what went wrong."""
    if feed.url.startswith("file:"):
        return _read_file(feed.url)
    policy = FeedPolicy(allow_private=feed.allow_private)
    limits = HttpLimits(
        connect_timeout=feed.timeout, total_timeout=feed.timeout, answer_bytes=MAX_BYTES + 1
    )
    headers = {"user-agent": USER_AGENT, "accept": ACCEPT, "accept-encoding": "identity"}
    if etag:
        headers["if-none-match"] = etag
    if last_modified:
        headers["if-modified-since"] = last_modified
    client = build_client(policy, limits)
    try:
        async with asyncio.timeout(feed.timeout):
            return await _follow(client, feed.url, headers)
    except TimeoutError as exc:
        raise FeedError(f"no complete answer within {feed.timeout:g} s") from exc
    finally:
        await client.aclose()


async def _follow(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Fetched:
    seen: list[str] = []
    while True:
        seen.append(url)
        response = await _get(client, url, headers)
        status = response.status_code
        if status == 304:
            return Fetched(body=None)
        if status in (301, 302, 303, 307, 308):
            location = response.headers.get("location")
            if not location:
                raise FeedError(f"HTTP {status} redirect without a Location")
            url = urljoin(url, location)
            if url in seen:
                raise FeedError(f"redirect loop ({' → '.join(map(mask_url, [*seen, url]))})")
            if len(seen) > MAX_REDIRECTS:
                raise FeedError(f"more than {MAX_REDIRECTS} redirects")
            continue
        if not 200 <= status < 300:
            redirected = f" from {mask_url(url)}" if len(seen) > 1 else ""
            raise FeedError(f"HTTP {status}{redirected}")
        if len(response.content) > MAX_BYTES:
            raise FeedError(f"answer larger than {MAX_BYTES // (1024 * 1024)} MB: not read")
        return Fetched(
            body=response.content,
            content_type=response.headers.get("content-type", ""),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    try:
        request = httpx.Request("GET", url, headers=headers)
        return await client.send(request)
    except TargetError as exc:
        raise FeedError(str(exc)) from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise FeedError(f"invalid URL {mask_url(url)}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise FeedError(f"timed out: {exc or type(exc).__name__}") from exc
    except (httpx.TransportError, aiohttp.ClientError, OSError) as exc:
        raise FeedError(f"connection failed: {exc or type(exc).__name__}") from exc


def _read_file(url: str) -> Fetched:
    path = Path(unquote(urlsplit(url).path))
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise FeedError(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MB: not read")
        return Fetched(body=path.read_bytes())
    except OSError as exc:
        raise FeedError(f"{path}: cannot read: {exc.strerror or exc}") from exc
