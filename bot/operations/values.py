"""Reading the values a person gives (names, topics, moments, reader options), the same
for the CLI's options and the API's fields; ``ConfigError`` naming the value at fault."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.digest import ReaderOptions
from bot.errors import ConfigError
from bot.settings import Settings
from bot.state.model import LINE_LIMIT, check_timezone

FIRST_YEAR, LAST_YEAR = 2, 9998  # a window's start and the zones around a date stay in range
# C0 controls (ESC included), DEL, C1 controls, and the Unicode line and paragraph separators.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_name(name: str | None, *, option: str = "--name") -> str | None:
    """A name or a reason: one line of printable text (no control characters), at most
    ``LINE_LIMIT`` characters, as the API and the state's one-line fields allow."""
    if name is None:
        return None
    if not name.strip():
        raise ConfigError(f"{option}: empty")
    if found := CONTROL.search(name):
        raise ConfigError(
            f"{option}: control character U+{ord(found.group()):04X} not allowed "
            f"(at position {found.start() + 1})"
        )
    if len(name) > LINE_LIMIT:
        raise ConfigError(f"{option}: too long: {len(name)} characters (at most {LINE_LIMIT})")
    return name


def parse_topics(value: str | None) -> tuple[str, ...] | None:
    """``a,b`` → ``("a", "b")``, each once, in the order given; None (all) if not given."""
    if value is None:
        return None
    topics = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    if not topics:
        raise ConfigError("--topics: empty")
    return topics


def check_zone(zone: str) -> str:
    try:
        check_timezone(zone)
    except ValueError as exc:
        raise ConfigError(f"--timezone: {exc}") from None
    return zone


def parse_moment(value: str | None, *, option: str, timezone: str) -> datetime:
    """An ISO 8601 date or datetime (a naive one is read in ``timezone``); now if None."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{option}: {value!r} is not an ISO 8601 date or datetime (e.g. 2025-12-02T07:00)"
        ) from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ConfigError(
            f"{option}: {value!r} is out of range (years {FIRST_YEAR} to {LAST_YEAR})"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=check_timezone(timezone))
    return moment


def reader_options(
    settings: Settings, topics: str | None, locale: str | None, timezone: str | None
) -> ReaderOptions:
    return ReaderOptions(
        topics=parse_topics(topics),
        locale=locale or settings.default_locale,
        timezone=check_zone(timezone or settings.default_timezone),
        stale_after=settings.stale_after,
    )
