"""Properties of composed digests over random dates, windows and developments.

"What to watch next" holds every expected development whose time has not passed when
the window starts, soonest first; the sources listed are exactly those behind what the
digest shows, key figures included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.digest import ReaderOptions, Window, compose
from bot.errors import ConfigError
from bot.state import State
from bot.state.history import Version
from bot.state.model import Development, Source, When

SEED_SOURCE = "report-2025-12-02"
ZONES = [
    "UTC",
    "Europe/Paris",
    "Europe/Moscow",
    "America/New_York",
    "America/Santiago",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
]
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def text(value: str) -> dict[str, str]:
    return {"en": value, "fr": value}


def development(
    dev_id: str,
    *,
    recorded: datetime,
    standing: str = "expected",
    when: When | None = None,
    topic: str = "talks",
    sources: Iterable[str] = (SEED_SOURCE,),
    figures: int = 0,
    importance: int = 3,
) -> Development:
    data: dict[str, object] = {
        "id": dev_id,
        "topic": topic,
        "recorded": recorded,
        "standing": standing,
        "importance": importance,
        "title": text(f"Title of {dev_id}"),
        "summary": text(f"Summary of {dev_id}."),
        "sources": list(sources),
        "figures": [
            {"label": text(f"figure {n} of {dev_id}"), "value": n, "unit": "length-kilometer"}
            for n in range(figures)
        ],
    }
    if when is not None:
        data["when"] = when.model_dump(exclude_none=True)
    elif standing != "expected":
        data["when"] = {"at": "2025-11-30"}
    if standing == "contested":
        data["sides"] = [
            {"actor": "kremlin", "position": text("yes")},
            {"actor": "white-house", "position": text("no")},
        ]
    return Development.model_validate(data)


def with_extra(
    state: State, developments: Iterable[Development], sources: Iterable[Source] = ()
) -> State:
    """The state with more developments (in the loader's order, each with its one
    version) and sources."""
    developments = list(developments)
    return dataclasses.replace(
        state,
        sources={**state.sources, **{s.id: s for s in sources}},
        developments=tuple(
            sorted([*state.developments, *developments], key=lambda d: (d.recorded, d.id))
        ),
        history={
            **state.history,
            **{d.id: (Version(1, d.recorded, "recorded", d),) for d in developments},
        },
    )


# ------------------------------------------------------------ an oracle for "when"


def earliest(when: When) -> datetime:
    """The first moment ``when`` designates, from its text alone."""
    parts = [int(p) for p in when.at.replace("T", "-").replace(":", "-").split("-")]
    if when.precision == "month":
        return datetime(parts[0], parts[1], 1, tzinfo=UTC)
    if when.precision == "day":
        return datetime(parts[0], parts[1], parts[2], tzinfo=UTC)
    assert when.timezone is not None
    return datetime(*parts, tzinfo=ZoneInfo(when.timezone))  # type: ignore[misc]


def last(when: When) -> datetime:
    """The last moment ``when`` designates: a month or a day runs to its end (so does
    "after" a time: to the end of that day); "before" a day ends as the day begins."""
    start = earliest(when)
    if when.precision == "month":
        year, month = divmod(start.month, 12)
        return datetime(start.year + year, month + 1, 1, tzinfo=UTC)
    if when.qualifier == "before":
        return start
    if when.precision == "day" or when.qualifier == "after":
        next_day = start.date() + timedelta(days=1)
        return datetime.combine(next_day, time(0), tzinfo=start.tzinfo)
    return start


days = st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31))
months = st.builds(
    lambda d, q: When(at=f"{d.year}-{d.month:02d}", qualifier=q),
    days,
    st.sampled_from([None, "early", "mid", "late"]),
)
whole_days = st.builds(
    lambda d, q: When(at=d.isoformat(), qualifier=q),
    days,
    st.sampled_from([None, "by", "after", "before"]),
)
times = st.builds(
    lambda d, h, m, zone, q: When(
        at=f"{d.isoformat()}T{h:02d}:{m:02d}", timezone=zone, qualifier=q
    ),
    days,
    st.integers(0, 23),
    st.sampled_from([0, 30, 59]),
    st.sampled_from(ZONES),
    st.sampled_from([None, "after", "before", "around"]),
)
whens = st.one_of(months, whole_days, times)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Development], Window, str]:
    """Expected developments, and a window that often starts right at one's last moment."""
    chosen = draw(st.lists(st.one_of(st.none(), whens, whens), min_size=1, max_size=5))
    moments = [last(w) for w in chosen if w is not None]
    nudge = timedelta(seconds=draw(st.sampled_from([-1, 0, 1, 60])))
    if moments and draw(st.integers(0, 3)):
        start = draw(st.sampled_from(moments)) + nudge
    else:
        start = datetime.combine(draw(days), time(draw(st.integers(0, 23))), tzinfo=UTC)
    start = start.astimezone(ZoneInfo(draw(st.sampled_from(ZONES))))
    end = start + timedelta(hours=draw(st.sampled_from([0, 1, 24, 24 * 40])))
    devs = []
    for n, when in enumerate(chosen):
        recorded = end - timedelta(hours=draw(st.integers(-24, 24 * 120)))
        devs.append(development(f"expect-{n}", recorded=recorded, when=when))
    return devs, Window(start=start, end=end), draw(st.sampled_from(ZONES))


@SETTINGS
@given(scenarios())
def test_watch_next_holds_what_has_not_passed_soonest_first(seed_state, scenario) -> None:
    extra, window, zone = scenario
    state = with_extra(seed_state, extra)
    digest = compose(state, ReaderOptions(timezone=zone), window)
    expected = [
        d
        for d in state.developments
        if d.standing == "expected"
        and d.recorded < window.end
        and (d.when is None or last(d.when) >= window.start)
    ]
    expected.sort(key=lambda d: (d.when is None, earliest(d.when) if d.when else 0, d.id))
    assert [d.id for d in digest.watch_next] == [d.id for d in expected]
    for view in digest.watch_next:
        dev = next(d for d in state.developments if d.id == view.id)
        assert view.is_new is (dev.recorded >= window.start)
    # an expectation is watched, never reported as news
    assert all(d.standing != "expected" for s in digest.sections for d in s.new)


@SETTINGS
@given(whens, st.sampled_from(ZONES))
def test_when_is_shown_as_given_and_times_in_the_readers_zone(seed_state, when, zone) -> None:
    recorded = datetime(2023, 6, 1, tzinfo=UTC)
    state = with_extra(seed_state, [development("expect-x", recorded=recorded, when=when)])
    window = Window(start=earliest(when) - timedelta(days=1), end=earliest(when))
    (view,) = [
        d
        for d in compose(state, ReaderOptions(timezone=zone), window).watch_next
        if d.id == "expect-x"
    ]
    assert view.when is not None
    assert (view.when.at, view.when.qualifier, view.when.timezone) == (
        when.at,
        when.qualifier,
        when.timezone,
    )
    assert view.when.precision == when.precision
    if when.precision == "time":
        assert view.when.reader_time == earliest(when)
        assert view.when.reader_time.tzinfo == ZoneInfo(zone)
    else:
        assert view.when.reader_time is None


BOUNDARIES = [
    # (when, still watched at, gone at)
    ({"at": "2025-12"}, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00"),
    ({"at": "2024-02", "qualifier": "late"}, "2024-03-01T00:00:00Z", "2024-03-01T00:01:00Z"),
    ({"at": "2025-02", "qualifier": "early"}, "2025-02-28T23:59:00Z", "2025-03-01T00:00:01Z"),
    ({"at": "2025-12-03"}, "2025-12-04T00:00:00Z", "2025-12-04T00:00:01Z"),
    ({"at": "2025-12-03", "qualifier": "by"}, "2025-12-03T23:59:59Z", "2025-12-04T00:01:00Z"),
    ({"at": "2025-12-03", "qualifier": "after"}, "2025-12-04T00:00:00Z", "2025-12-04T01:00:00Z"),
    ({"at": "2025-12-03", "qualifier": "before"}, "2025-12-03T00:00:00Z", "2025-12-03T00:00:01Z"),
    (
        {"at": "2025-12-02T17:00", "timezone": "Europe/Moscow"},
        "2025-12-02T14:00:00Z",
        "2025-12-02T14:00:01Z",
    ),
    (
        {"at": "2025-12-02T17:00", "timezone": "Europe/Moscow", "qualifier": "after"},
        "2025-12-02T23:59:59+03:00",
        "2025-12-03T00:00:01+03:00",
    ),
    (
        {"at": "2025-12-02T17:30", "timezone": "Asia/Kathmandu", "qualifier": "before"},
        "2025-12-02T17:30:00+05:45",
        "2025-12-02T17:31:00+05:45",
    ),
]


@pytest.mark.parametrize(("when", "kept", "gone"), BOUNDARIES)
def test_an_expectation_leaves_watch_next_once_its_time_has_passed(
    seed_state, when, kept, gone
) -> None:
    dev = development("expect-x", recorded=datetime(2023, 1, 1, tzinfo=UTC), when=When(**when))
    state = with_extra(seed_state, [dev])

    def watched(start: str) -> bool:
        begin = datetime.fromisoformat(start)
        digest = compose(state, ReaderOptions(), Window(start=begin, end=begin + timedelta(days=1)))
        return "expect-x" in [d.id for d in digest.watch_next]

    assert watched(kept) and not watched(gone)


def test_watch_next_is_soonest_first_whatever_the_precision(seed_state) -> None:
    recorded = datetime(2025, 11, 1, tzinfo=UTC)
    devs = [
        development("c-month", recorded=recorded, when=When(at="2025-12")),
        development("b-undated", recorded=recorded),
        development("a-day", recorded=recorded, when=When(at="2025-12-05", qualifier="by")),
        development(
            "d-time", recorded=recorded, when=When(at="2025-12-04T23:00", timezone="Asia/Tokyo")
        ),
        development("e-same-instant", recorded=recorded, when=When(at="2025-12-01")),
    ]
    state = with_extra(seed_state, devs)
    start = datetime(2025, 11, 20, tzinfo=UTC)
    digest = compose(state, ReaderOptions(topics=("talks",)), Window(start=start, end=start))
    assert [d.id for d in digest.watch_next] == [
        "c-month",  # 1 December, 00:00 UTC
        "e-same-instant",  # the same instant: by id
        "d-time",  # 4 December, 14:00 UTC
        "a-day",  # 5 December
        "b-undated",  # undated: last
    ]


# ------------------------------------------------------------ sources and figures

EXTRA_SOURCES = [
    Source.model_validate(
        {
            "id": f"source-{n}",
            "title": text(f"Source {n}"),
            "published": "2025-11-01",
            "language": "en",
        }
    )
    for n in range(4)
]
TOPICS = ["talks", "sanctions", "military", "politics"]


@st.composite
def newsrooms(draw: st.DrawFn) -> tuple[list[Development], Window, tuple[str, ...] | None]:
    end = datetime(2025, 12, 10, 7, tzinfo=UTC)
    window = Window(start=end - timedelta(hours=draw(st.sampled_from([1, 24, 24 * 30]))), end=end)
    devs = []
    for n in range(draw(st.integers(0, 8))):
        standing = draw(st.sampled_from(["confirmed", "claimed", "contested", "expected"]))
        when = draw(st.sampled_from([None, When(at="2025-12-20"), When(at="2025-11-02")]))
        devs.append(
            development(
                f"dev-{n}",
                recorded=end - timedelta(hours=draw(st.integers(-24, 24 * 60))),
                standing=standing,
                when=when if standing == "expected" else None,
                topic=draw(st.sampled_from(TOPICS)),
                sources=draw(
                    st.lists(
                        st.sampled_from([s.id for s in EXTRA_SOURCES]),
                        min_size=1,
                        max_size=2,
                        unique=True,
                    )
                ),
                figures=draw(st.integers(0, 2)),
                importance=draw(st.integers(1, 5)),
            )
        )
    topics = draw(
        st.one_of(st.none(), st.lists(st.sampled_from(TOPICS), min_size=1, unique=True).map(tuple))
    )
    return devs, window, topics


@SETTINGS
@given(newsrooms())
def test_sources_are_exactly_those_behind_what_is_shown(seed_state, newsroom) -> None:
    extra, window, topics = newsroom
    state = with_extra(seed_state, extra, EXTRA_SOURCES)
    digest = compose(state, ReaderOptions(topics=topics), window)
    by_id = {d.id: d for d in state.developments}
    shown = [d for s in digest.sections for d in (*s.new, *s.contested)] + digest.watch_next
    behind = {src for view in shown for src in view.sources}
    behind |= {
        src for s in digest.sections for f in s.figures for src in by_id[f.development].sources
    }
    assert [s.id for s in digest.sources] == [s for s in state.sources if s in behind]


@SETTINGS
@given(newsrooms())
def test_sections_report_news_and_keep_standing_items(seed_state, newsroom) -> None:
    extra, window, topics = newsroom
    state = with_extra(seed_state, extra, EXTRA_SOURCES)
    digest = compose(state, ReaderOptions(topics=topics), window)
    assert [s.topic for s in digest.sections] == list(topics or TOPICS)
    for section in digest.sections:
        known = [
            d for d in state.developments if d.topic == section.topic and d.recorded < window.end
        ]
        news = [d for d in known if d.recorded >= window.start and d.standing != "expected"]
        news.sort(key=lambda d: (-d.importance, d.recorded, d.id))
        assert [d.id for d in section.new] == [d.id for d in news]
        assert all(d.is_new for d in section.new)
        contested = [d for d in known if d.standing == "contested"]
        assert [d.id for d in section.contested] == [d.id for d in contested]
        assert [d.is_new for d in section.contested] == [
            d.recorded >= window.start for d in contested
        ]
        # key figures are standing items: every known one, new or not
        assert [(f.development, f.label) for f in section.figures] == [
            (d.id, f.label.en) for d in known for f in d.figures
        ]
    new = [
        d
        for d in state.developments
        if d.topic in (topics or TOPICS) and window.start <= d.recorded < window.end
    ]
    assert digest.is_empty is (not new)
    if new:
        top = sorted(new, key=lambda d: (-d.importance, d.recorded, d.id))[:3]
        assert [g.development for g in digest.at_a_glance] == [d.id for d in top]
    else:
        assert [g.text for g in digest.at_a_glance] == [s.status for s in digest.sections]


def test_a_source_cited_only_for_a_figure_is_listed(seed_state) -> None:
    old = datetime(2025, 6, 1, tzinfo=UTC)
    state = with_extra(
        seed_state,
        [
            development(
                "old-figure",
                recorded=old,
                standing="confirmed",
                topic="military",
                sources=["source-0"],
                figures=1,
            ),
            development(
                "old-fact",
                recorded=old,
                standing="confirmed",
                topic="military",
                sources=["source-1"],
            ),
        ],
        EXTRA_SOURCES,
    )
    later = datetime(2026, 2, 1, tzinfo=UTC)
    digest = compose(state, ReaderOptions(topics=("military",)), Window.ending(later))
    military = digest.sections[0]
    assert "old-figure" not in [d.id for d in (*military.new, *military.contested)]
    assert "old-figure" in [f.development for f in military.figures]
    listed = [s.id for s in digest.sources]
    assert "source-0" in listed and "source-1" not in listed
    # a reader who does not follow the topic sees neither the figure nor its source
    other = compose(state, ReaderOptions(topics=("talks",)), Window.ending(later))
    assert "source-0" not in [s.id for s in other.sources]


# ------------------------------------------------------------ windows and options


def test_window_ending_since_a_given_moment(seed_state) -> None:
    end = datetime(2025, 12, 3, 7, tzinfo=UTC)
    since = datetime(2025, 11, 30, 7, tzinfo=UTC)
    assert Window.ending(end, since=since) == Window(start=since, end=end)
    assert Window.ending(end) == Window(start=end - timedelta(hours=24), end=end)
    digest = compose(seed_state, ReaderOptions(), Window.ending(end, since=since))
    assert digest.window_start == since and digest.window_end == end


def test_an_empty_window_is_allowed_and_reports_nothing_new(seed_state) -> None:
    moment = datetime(2025, 12, 2, 12, tzinfo=UTC)  # when the seed developments were recorded
    digest = compose(seed_state, ReaderOptions(), Window(start=moment, end=moment))
    assert digest.is_empty
    assert all(not s.new for s in digest.sections)


def test_window_bounds_both_need_a_timezone() -> None:
    with pytest.raises(ConfigError, match="timezone"):
        Window(start=datetime(2025, 1, 1, tzinfo=UTC), end=datetime(2025, 1, 2))
    with pytest.raises(ConfigError, match="timezone"):
        Window(start=datetime(2025, 1, 1), end=datetime(2025, 1, 2))


def test_default_reader_options(seed_state) -> None:
    digest = compose(seed_state, ReaderOptions(), Window.ending(datetime(2025, 12, 3, tzinfo=UTC)))
    assert digest.locale == "en" and digest.timezone == "UTC"
    assert digest.story == seed_state.story.title.en
    french = compose(
        seed_state, ReaderOptions(locale="fr"), Window.ending(datetime(2025, 12, 3, tzinfo=UTC))
    )
    assert french.locale == "fr" and french.story == seed_state.story.title.fr


def test_option_errors_name_the_choices(seed_state) -> None:
    window = Window.ending(datetime(2025, 12, 3, tzinfo=UTC))
    with pytest.raises(ConfigError) as caught:
        compose(seed_state, ReaderOptions(topics=("weather", "talks", "sport")), window)
    assert str(caught.value) == (
        "unknown topic 'weather', 'sport' (known: talks, sanctions, military, politics)"
    )
    with pytest.raises(ConfigError) as caught:
        compose(seed_state, ReaderOptions(locale="de"), window)
    assert str(caught.value) == "unknown locale 'de' (known: en, fr)"
