"""Compose a reader's Digest from the state: a pure function of its inputs (no I/O, no clock)."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.digest.model import (
    ActorView,
    ChangeView,
    DevelopmentView,
    Digest,
    FigureView,
    GlanceItem,
    NewsView,
    Section,
    SideView,
    SourceView,
    WhenView,
)
from bot.errors import ConfigError
from bot.state.history import Version, standing_at
from bot.state.loader import State, at_moment
from bot.state.model import LOCALES, Development, Standing, When, check_timezone

GLANCE_SIZE = 3
FIRST_WINDOW = timedelta(hours=24)
STALE_AFTER = timedelta(days=3)


@dataclass(frozen=True)
class ReaderOptions:
    """What a reader chose: topics (None for all), language and timezone; and after how
    long without a change the digest says the briefing is not current (the operator's
    ``BRIEFING_STALE_AFTER``)."""

    topics: tuple[str, ...] | None = None
    locale: str = "en"
    timezone: str = "UTC"
    stale_after: timedelta = STALE_AFTER


@dataclass(frozen=True)
class Window:
    """The half-open period ``[start, end)`` whose new developments a digest reports."""

    start: datetime
    end: datetime

    @classmethod
    def ending(cls, end: datetime, *, since: datetime | None = None) -> Window:
        """The window ending at ``end``, starting at ``since`` or a day earlier."""
        return cls(start=since or end - FIRST_WINDOW, end=end)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError("window bounds need a timezone (e.g. 2025-12-02T07:00:00+01:00)")
        if self.start > self.end:
            raise ConfigError(f"window starts ({self.start}) after it ends ({self.end})")


def check_options(state: State, options: ReaderOptions) -> ZoneInfo:
    """Validate reader options against the state; raise ``ConfigError`` naming what is wrong."""
    if options.locale not in LOCALES:
        raise ConfigError(f"unknown locale {options.locale!r} (known: {', '.join(LOCALES)})")
    unknown = [t for t in options.topics or () if t not in state.topics]
    if unknown:
        known = ", ".join(state.topics)
        raise ConfigError(f"unknown topic {', '.join(map(repr, unknown))} (known: {known})")
    try:
        return check_timezone(options.timezone)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def latest_moment(when: When) -> datetime:
    """The last moment ``when`` can designate (open-ended "after" runs to the end of its day;
    "before" a day or a time ends where that day or time begins)."""
    start = when.local()
    if when.precision == "month":
        days = calendar.monthrange(start.year, start.month)[1]
        return start + timedelta(days=days)
    if when.qualifier == "before":
        return start
    if when.precision == "day" or when.qualifier == "after":
        return start.replace(hour=0, minute=0) + timedelta(days=1)
    return start


def compose(
    state: State, options: ReaderOptions, window: Window, *, news: Sequence[NewsView] = ()
) -> Digest:
    """Build the Digest for one reader and one window, with the reports from news feeds
    among ``news`` filed in the window under the reader's topics. Raises ``ConfigError`` on
    bad options.

    The digest shows the state as it stood at the window's end, and what changed within
    the window: new developments, changed standings, corrections, retractions and status
    lines.
    """
    zone = check_options(state, options)
    locale = options.locale
    topics = list(options.topics or state.topics)
    at_end = at_moment(state, window.end)
    at_start = at_moment(state, window.start)
    known = sorted(
        (
            v.development
            for v in at_end.values()
            if not v.retracted and v.development.topic in topics
        ),
        key=lambda d: (d.recorded, d.id),
    )
    new = [d for d in known if d.id not in at_start]
    new_ids = {d.id for d in new}
    changes = _changes(state, at_start, at_end, window, topics)

    def view(dev: Development) -> DevelopmentView:
        return _development_view(state, dev, locale=locale, zone=zone, is_new=dev.id in new_ids)

    sections = []
    figure_sources: set[str] = set()
    status_changed = False
    for topic_id in topics:
        topic = state.topics[topic_id]
        mine = [d for d in known if d.topic == topic_id]
        fresh = [d for d in new if d.topic == topic_id and d.standing is not Standing.EXPECTED]
        figure_sources.update(src for d in mine if d.figures for src in d.sources)
        status = standing_at(state.statuses[topic_id], window.end)
        before = standing_at(state.statuses[topic_id], window.start)
        changed = status is not None and before is not None and status is not before
        status_changed |= changed
        sections.append(
            Section(
                topic=topic_id,
                name=topic.name.get(locale),
                status=status.text.get(locale) if status else None,
                status_since=status.at.astimezone(zone) if status and status.at else None,
                status_changed=changed,
                new=[view(d) for d in _by_importance(fresh)],
                changes=[
                    _change_view(c, view(c.version.development), zone)
                    for c in changes
                    if c.version.development.topic == topic_id
                ],
                contested=[view(d) for d in mine if d.standing is Standing.CONTESTED],
                figures=[f for d in mine for f in view(d).figures],
            )
        )
    watch = [
        d
        for d in known
        if d.standing is Standing.EXPECTED
        and (d.when is None or latest_moment(d.when) >= window.start)
    ]
    watch.sort(key=lambda d: (d.when is None, d.when.local() if d.when else window.end, d.id))
    glance = [
        GlanceItem(topic=d.topic, text=d.title.get(locale), development=d.id)
        for d in _by_importance(new)[:GLANCE_SIZE]
    ]
    glance += [
        GlanceItem(
            topic=c.version.development.topic,
            text=c.version.development.title.get(locale),
            development=c.version.development.id,
            change=c.kind,
        )
        for c in _by_importance_changes(changes)[: GLANCE_SIZE - len(glance)]
    ]
    if not glance:
        glance = [
            GlanceItem(topic=s.topic, text=s.status, since=s.status_since)
            for s in sections
            if s.status is not None
        ]
    shown = {
        dev.id: dev
        for dev in [
            *(d for s in sections for d in (*s.new, *s.contested)),
            *(c.development for s in sections for c in s.changes),
            *map(view, watch),
        ]
    }
    cited = {src for dev in shown.values() for src in dev.sources} | figure_sources
    now = window.end.astimezone(zone)
    reports = news_in(news, topics, window)
    as_of = _as_of(state, window.end)
    return Digest(
        story=state.story.title.get(locale),
        locale="fr" if locale == "fr" else "en",
        timezone=options.timezone,
        date=now.date(),
        generated_at=now,
        window_start=window.start.astimezone(zone),
        window_end=now,
        state_revision=state.revision,
        as_of=as_of.astimezone(zone) if as_of else None,
        stale=as_of is not None and window.end - as_of > options.stale_after,
        is_empty=not new and not changes and not status_changed and not reports,
        at_a_glance=glance,
        sections=sections,
        watch_next=[view(d) for d in watch],
        sources=[_source_view(state, s, locale) for s in state.sources if s in cited],
        news=reports,
    )


def news_in(news: Sequence[NewsView], topics: Sequence[str], window: Window) -> list[NewsView]:
    """The reports filed in ``window`` under one of ``topics``, oldest first."""
    found = [n for n in news if n.topic in topics and window.start <= n.recorded < window.end]
    return sorted(found, key=lambda n: (n.recorded, n.id))


def _as_of(state: State, end: datetime) -> datetime | None:
    """When the state last changed before ``end``: its latest development version or
    status line recorded by then."""
    moments = [v.at for vs in state.history.values() for v in vs if v.at < end]
    moments += [
        v.at for vs in state.statuses.values() for v in vs if v.at is not None and v.at < end
    ]
    return max(moments, default=None)


@dataclass(frozen=True)
class _Change:
    kind: Literal["standing", "corrected", "updated", "retracted"]
    version: Version  # the newest in the window
    previous: Version  # what stood at the window's start
    reason: str


def _changes(
    state: State,
    at_start: dict[str, Version],
    at_end: dict[str, Version],
    window: Window,
    topics: list[str],
) -> list[_Change]:
    """Developments known at the window's start that changed within it, once each: a
    retraction, else a new standing, else a correction, else an update (a new source)."""
    found = []
    for dev_id, before in at_start.items():
        after = at_end[dev_id]
        if before.retracted or after is before or after.development.topic not in topics:
            continue
        inside = [v for v in state.history[dev_id] if window.start <= v.at < window.end]
        if after.retracted:
            kind: Literal["standing", "corrected", "updated", "retracted"] = "retracted"
        elif after.development.standing is not before.development.standing:
            kind = "standing"
        elif any(v.kind == "corrected" for v in inside):
            kind = "corrected"
        else:
            kind = "updated"
        reasons = [
            v.because for v in inside if v.because and (kind != "standing" or v.kind == "standing")
        ]
        found.append(_Change(kind, after, before, reasons[-1] if reasons else ""))
    return found


def _by_importance_changes(changes: list[_Change]) -> list[_Change]:
    order = {"retracted": 0, "standing": 1, "corrected": 2, "updated": 3}
    return sorted(
        (c for c in changes if c.kind != "updated"),
        key=lambda c: (order[c.kind], -c.version.development.importance, c.version.at),
    )


def _change_view(change: _Change, development: DevelopmentView, zone: ZoneInfo) -> ChangeView:
    previous = change.previous.development.standing
    return ChangeView(
        kind=change.kind,
        development=development,
        previous_standing=previous.value if change.kind == "standing" else None,
        at=change.version.at.astimezone(zone),
        reason=change.reason,
    )


def _by_importance(devs: Iterable[Development]) -> list[Development]:
    return sorted(devs, key=lambda d: (-d.importance, d.recorded, d.id))


def _actor_view(state: State, actor_id: str, locale: str) -> ActorView:
    actor = state.actors[actor_id]
    return ActorView(
        id=actor.id,
        name=actor.name.get(locale),
        role=actor.role.get(locale) if actor.role else None,
    )


def _when_view(when: When, zone: ZoneInfo) -> WhenView:
    reader_time = None
    if when.precision == "time":
        reader_time = when.local().astimezone(zone)
    return WhenView(
        at=when.at,
        precision=when.precision,
        qualifier=when.qualifier,
        timezone=when.timezone,
        reader_time=reader_time,
    )


def _development_view(
    state: State, dev: Development, *, locale: str, zone: ZoneInfo, is_new: bool
) -> DevelopmentView:
    return DevelopmentView(
        id=dev.id,
        topic=dev.topic,
        title=dev.title.get(locale),
        summary=dev.summary.get(locale),
        standing=dev.standing.value,
        when=_when_view(dev.when, zone) if dev.when else None,
        recorded=dev.recorded.astimezone(UTC),
        is_new=is_new,
        importance=dev.importance,
        reported_by=[_actor_view(state, a, locale) for a in dev.reported_by],
        sides=[
            SideView(actor=_actor_view(state, s.actor, locale), position=s.position.get(locale))
            for s in dev.sides
        ],
        figures=[
            FigureView(
                label=f.label.get(locale),
                value=f.value,
                unit=f.unit,
                approximate=f.approximate,
                development=dev.id,
                period=_when_view(period, zone) if (period := f.when or dev.when) else None,
                estimate=f.estimate,
                estimated_by=[_actor_view(state, a, locale) for a in dev.reported_by]
                if f.estimate
                else [],
            )
            for f in dev.figures
        ],
        sources=list(dev.sources),
    )


def _source_view(state: State, source_id: str, locale: str) -> SourceView:
    source = state.sources[source_id]
    return SourceView(
        id=source.id,
        kind=source.kind.get(locale) if source.kind else None,
        title=source.title.get(locale) if source.title else None,
        publisher=source.publisher.get(locale) if source.publisher else None,
        published=source.published,
        language=source.language,
        url=source.url,
    )
