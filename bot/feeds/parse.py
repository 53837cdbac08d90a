"""Read a feed's body into entries: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed
1.0/1.1 by hand. A body that is not a well-formed feed is refused whole (``FeedError``)."""

from __future__ import annotations

import calendar
import html
import json
import re
import xml.sax
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.feeds.fetch import FeedError

_TAG = re.compile(r"<[^>]*>")
SUMMARY_LENGTH = 600


@dataclass(frozen=True)
class Entry:
    """One item of a feed, as plain text."""

    guid: str | None
    link: str | None
    title: str
    summary: str
    published: datetime | None
    language: str | None = None


def parse(body: bytes, *, content_type: str = "") -> list[Entry]:
    """The entries of ``body``; ``FeedError`` naming the problem when it is not a feed."""
    start = body.lstrip()[:1]
    if "json" in content_type.lower() or start in (b"{", b"["):
        return _json_feed(body)
    return _xml_feed(body, content_type)


def plain(text: str | None) -> str:
    """Text without markup, entities decoded, white space collapsed."""
    return " ".join(html.unescape(_TAG.sub(" ", text or "")).split())


def _shorten(text: str) -> str:
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1].rstrip() + "…"


def _xml_feed(body: bytes, content_type: str) -> list[Entry]:
    import feedparser  # only when a feed is read

    parsed: Any = feedparser.parse(
        body, response_headers={"content-type": content_type or "application/xml"}
    )
    problem = parsed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXParseException):
        raise FeedError(
            f"malformed XML at line {problem.getLineNumber()}, column "
            f"{problem.getColumnNumber()}: {problem.getMessage()}"
        )
    if isinstance(problem, feedparser.CharacterEncodingOverride):
        raise FeedError(f"wrong character encoding: {problem}")
    if not parsed.version:
        looks = "an HTML page" if b"<html" in body[:2048].lower() else "not RSS, Atom or JSON Feed"
        raise FeedError(f"not a feed: {looks}")
    language = _language(parsed.feed.get("language"))
    entries = []
    for item in parsed.entries:
        when = item.get("published_parsed") or item.get("updated_parsed")
        entries.append(
            Entry(
                guid=item.get("id") or None,
                link=item.get("link") or None,
                title=plain(item.get("title")),
                summary=_shorten(plain(item.get("summary"))),
                published=datetime.fromtimestamp(calendar.timegm(when), UTC) if when else None,
                language=_language(item.get("language")) or language,
            )
        )
    return entries


def _json_feed(body: bytes) -> list[Entry]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"malformed JSON: {exc}") from exc
    version = data.get("version", "") if isinstance(data, dict) else ""
    if not isinstance(version, str) or not version.startswith("https://jsonfeed.org/version/"):
        raise FeedError("not a feed: JSON without a JSON Feed version")
    items = data.get("items")
    if not isinstance(items, list):
        raise FeedError("malformed JSON Feed: 'items' is not a list")
    language = _language(data.get("language"))
    entries = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise FeedError(f"malformed JSON Feed: item {index} is not an object")
        text = item.get("summary") or item.get("content_text") or item.get("content_html")
        entries.append(
            Entry(
                guid=_text(item.get("id")),
                link=_text(item.get("url")),
                title=plain(_text(item.get("title"))),
                summary=_shorten(plain(_text(text))),
                published=_date(item.get("date_published") or item.get("date_modified"), index),
                language=_language(item.get("language")) or language,
            )
        )
    return entries


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _date(value: object, index: int) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FeedError(f"malformed JSON Feed: item {index}: bad date {value!r}") from exc
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _language(value: object) -> str | None:
    """``fr-FR`` → ``fr``; only the bot's languages are kept."""
    if not isinstance(value, str):
        return None
    code = value.strip().lower()[:2]
    return code if code in ("en", "fr") else None
