"""From a claimed row to what to send: the reader's window, the digest, the rendered message.

Each distinct (state revision, topics, locale, timezone, window, formats) is composed and
rendered once and shared by every reader who gets the same digest.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.delivery import Outcome, Status, Trigger, render_message
from bot.digest import DigestRenderer, ReaderOptions, Window, compose
from bot.digest.compose import FIRST_WINDOW, STALE_AFTER, news_in
from bot.digest.model import Digest, NewsView
from bot.errors import ConfigError
from bot.feeds import store as feed_store
from bot.outputs import Envelope, Message, Output, Target
from bot.outputs.registry import OutputPool
from bot.state import State
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database
from bot.store.states import StateSource

T = TypeVar("T")


class RenderCache:
    """Digests and messages by everything that decides their content (bounded LRU)."""

    def __init__(self, renderer: DigestRenderer, *, size: int = 512) -> None:
        self.renderer = renderer
        self.size = size
        self._digests: OrderedDict[tuple[Any, ...], Digest] = OrderedDict()
        self._messages: OrderedDict[tuple[Any, ...], Message] = OrderedDict()
        self.renders = 0

    def message(
        self,
        state: State,
        options: ReaderOptions,
        window: Window,
        output: type[Output],
        news: Sequence[NewsView] = (),
    ) -> Message:
        """The message ``output`` sends for this state, reader, window and news."""
        key = (state.revision, options, window.start, window.end, _news_key(news))

        def build() -> Message:
            self.renders += 1
            digest = self.digest(state, options, window, news)
            return render_message(self.renderer, digest, output)

        return self._cached(self._messages, (*key, output.formats), build)

    def digest(
        self, state: State, options: ReaderOptions, window: Window, news: Sequence[NewsView] = ()
    ) -> Digest:
        key = (state.revision, options, window.start, window.end, _news_key(news))
        return self._cached(self._digests, key, lambda: compose(state, options, window, news=news))

    def _cached(
        self,
        cache: OrderedDict[tuple[Any, ...], T],
        key: tuple[Any, ...],
        build: Callable[[], T],
    ) -> T:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        value = cache[key] = build()
        if len(cache) > self.size:
            cache.popitem(last=False)
        return value


def _news_key(news: Sequence[NewsView]) -> tuple[tuple[int, str | None], ...]:
    return tuple((n.id, n.topic) for n in news)


@dataclass(frozen=True)
class Prepared:
    """One row ready to send."""

    output: Output
    target: Target
    message: Message
    envelope: Envelope
    window: tuple[datetime, datetime]
    revision: str


class Preparer:
    """Loads what claimed rows need (subscriptions, last windows, the state) and turns each
    row into a ``Prepared`` send, or a skip when there is nothing to send."""

    def __init__(
        self,
        db: Database,
        outputs: OutputPool,
        renderer: DigestRenderer,
        *,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        self.db = db
        self.stale_after = stale_after
        self.outputs = outputs
        self.cache = RenderCache(renderer)
        self.states = StateSource(db)
        self._subs: dict[int, subs.Recipient] = {}
        self._windows: dict[int, datetime] = {}
        self._state: State | None = None
        self._news: list[NewsView] = []

    async def load(self, rows: Sequence[outbox.Claimed]) -> None:
        """Fetch, in a few queries, what ``rows`` need; subscriptions are read afresh, so a
        pause made since the last claim is seen."""
        for sub in await subs.recipients(self.db, {r.subscription_id for r in rows}):
            self._subs[sub.id] = sub
        fresh = [r.subscription_id for r in rows if r.window_start is None]
        self._windows.update(await outbox.last_windows(self.db, fresh))
        self._state = await self.states.latest()
        starts = [
            r.window_start or self._windows.get(r.subscription_id) or r.period - FIRST_WINDOW
            for r in rows
        ]
        if rows:  # the reports from news feeds any of these windows may show
            end = max(r.period for r in rows)
            self._news = await feed_store.reports(db=self.db, start=min(starts), end=end)

    def prepare(self, row: outbox.Claimed) -> Prepared | outbox.Finished:
        """What to send for ``row``, or the skip to record. Raise ``ConfigError`` for the
        operator's mistakes (no state, a template that does not render, a broken output)."""
        sub = self._subs[row.subscription_id]
        if sub.status == subs.REMOVED or (
            sub.status == subs.PAUSED and row.trigger != Trigger.FORCED
        ):
            why = f"subscription {sub.status}: {sub.paused_reason or 'no reason given'}"
            return outbox.Finished(row.id, row.subscription_id, Outcome(Status.SKIPPED, why))
        state = self._state
        if state is None:
            raise ConfigError("no briefing state imported yet (briefing state import)")
        since = row.window_start or self._windows.get(sub.id)
        window = Window.ending(row.period, since=min(since, row.period) if since else None)
        options = ReaderOptions(
            topics=sub.topics,
            locale=sub.locale,
            timezone=sub.timezone,
            stale_after=self.stale_after,
        )
        span = (window.start, window.end)
        news = news_in(self._news, options.topics or list(state.topics), window)
        if sub.skip_empty and self.cache.digest(state, options, window, news).is_empty:
            skipped = Outcome(Status.SKIPPED, "no news (skip-empty)")
            return outbox.Finished(row.id, row.subscription_id, skipped, span, state.revision)
        output = self.outputs.get(sub.kind)
        message = self.cache.message(state, options, window, type(output), news)
        return Prepared(
            output=output,
            target=Target(kind=sub.kind, address=sub.address, secrets=sub.secrets),
            message=message,
            envelope=Envelope(
                row.delivery_id, row.first_part, sub.unsubscribe_token, sub.created_at
            ),
            window=span,
            revision=state.revision,
        )

    def forget(self, subscription_id: int) -> None:
        """Drop a subscription read earlier (it was paused)."""
        self._subs.pop(subscription_id, None)
