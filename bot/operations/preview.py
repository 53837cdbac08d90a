"""The digest a reader would get: composed from the stored state for the options
given (or a subscription's), rendered as a document or as an output's payloads."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.delivery import render_message
from bot.digest import Digest, DigestRenderer, Window, compose
from bot.digest.render import FORMATS, JSON_FORMAT
from bot.errors import ConfigError
from bot.feeds import store as feed_store
from bot.operations.common import current_state
from bot.operations.subscriptions import find
from bot.operations.values import parse_moment, reader_options
from bot.outputs import make_context, output_classes
from bot.outputs.api import ApiOutput
from bot.outputs.apprise_bridge import AppriseOutput
from bot.outputs.webhooks import WebhookOutput
from bot.settings import Settings
from bot.state import load_state
from bot.store import outbox, states
from bot.store.database import Database

CHAT = "chat"  # chat dialects (this template) are previewed as the outputs that post them
PAYLOADS = (WebhookOutput, ApiOutput, AppriseOutput)  # outputs whose payloads preview prints


@dataclass(frozen=True)
class Reader:
    """Whose digest: topics (comma-separated; None: all), locale, timezone (None: the
    defaults), and the window's start and end as ISO 8601 (None: 24 h before now, now)."""

    topics: str | None = None
    locale: str | None = None
    timezone: str | None = None
    since: str | None = None
    now: str | None = None


def preview_formats() -> list[str]:
    """What a preview's format may be: the renderer's document formats and every
    registered webhook or chat-platform output (whose payloads are shown)."""
    webhooks = sorted(n for n, cls in output_classes().items() if issubclass(cls, PAYLOADS))
    chat_template = FORMATS[CHAT]
    documents = [f for f in (*FORMATS, JSON_FORMAT) if FORMATS.get(f) != chat_template]
    return [*documents, *webhooks]


def check_format(fmt: str) -> None:
    known = preview_formats()
    if fmt not in known and fmt not in FORMATS:  # a chat dialect by name still renders
        raise ConfigError(f"--format: unknown format {fmt!r} (known: {', '.join(known)})")


async def for_subscription(db: Database, subscription_id: int, reader: Reader) -> Reader:
    """``reader`` with what it leaves out taken from the subscription: its topics, locale,
    timezone, and its window's start (the end of its last delivered one)."""
    sub = await find(db, subscription_id)
    last = (await outbox.last_windows(db, [sub.id])).get(sub.id)
    return Reader(
        topics=reader.topics or (",".join(sub.topics) if sub.topics else None),
        locale=reader.locale or sub.locale,
        timezone=reader.timezone or sub.timezone,
        since=reader.since or (last.isoformat() if last else None),
        now=reader.now,
    )


async def digest_for(
    db: Database | None,
    settings: Settings,
    reader: Reader,
    *,
    now: datetime | None = None,
    files: Path | None = None,
) -> Digest:
    """The digest ``reader`` would get: from the stored state (what the bot sends) with the
    reports filed from news feeds in its window; from the state files at ``files`` (an edit
    checked before it is imported), or while there is no database (``db`` None)."""
    options = reader_options(settings, reader.topics, reader.locale, reader.timezone)
    end = now or parse_moment(reader.now, option="--now", timezone=options.timezone)
    start = (
        parse_moment(reader.since, option="--since", timezone=options.timezone)
        if reader.since
        else None
    )
    window = Window.ending(end, since=start)
    stored = await states.StateSource(db).latest() if db is not None and files is None else None
    if stored is not None:
        state = stored
    elif files is not None:
        state = await asyncio.to_thread(load_state, files, base=Path.cwd())
    else:
        state = await asyncio.to_thread(current_state, settings)
    news = await feed_store.reports(db, start=window.start, end=window.end) if db else []
    return compose(state, options, window, news=news)


MEDIA_TYPES = {"markdown": "text/markdown", "html": "text/html", JSON_FORMAT: "application/json"}


@dataclass(frozen=True)
class Preview:
    body: str
    media_type: str


async def render_preview(
    db: Database | None,
    settings: Settings,
    renderer: DigestRenderer,
    reader: Reader,
    fmt: str,
    *,
    files: Path | None = None,
) -> Preview:
    """The digest (as ``digest_for`` makes it) in ``fmt``: a document, or the JSON payloads
    an output would post."""
    check_format(fmt)
    return rendered(settings, renderer, await digest_for(db, settings, reader, files=files), fmt)


def rendered(settings: Settings, renderer: DigestRenderer, digest: Digest, fmt: str) -> Preview:
    """``digest`` in ``fmt``: a document, or the JSON payloads an output would post."""
    output_cls = output_classes().get(fmt)
    if output_cls is not None and issubclass(output_cls, PAYLOADS):
        output = output_cls(make_context(settings))
        payloads = output.payloads(render_message(renderer, digest, output_cls))
        return Preview(
            json.dumps(payloads, ensure_ascii=False, indent=2) + "\n", "application/json"
        )
    return Preview(renderer.render(digest, fmt), MEDIA_TYPES.get(fmt, "text/plain"))
