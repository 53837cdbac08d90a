from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.digest import ReaderOptions, Window, compose
from bot.errors import ConfigError
from bot.state import load_state
from tests.conftest import extra_development, write_developments

DAY_OF_REPORT = datetime(2025, 12, 2, 18, 0, tzinfo=UTC)


def all_shown(digest) -> set[str]:
    return {dev.id for s in digest.sections for dev in (*s.new, *s.contested)} | {
        dev.id for dev in digest.watch_next
    }


def test_first_digest_carries_every_seed_development(seed_state) -> None:
    digest = compose(seed_state, ReaderOptions(), Window.ending(DAY_OF_REPORT))
    assert not digest.is_empty
    assert all_shown(digest) == {d.id for d in seed_state.developments}
    assert [s.topic for s in digest.sections] == ["talks", "sanctions", "military", "politics"]
    assert [g.development for g in digest.at_a_glance] == [
        "pokrovsk-capture-contested",
        "putin-meeting-scheduled",
        "us-delegation-arrives-moscow",
    ]
    military = digest.sections[2]
    assert [d.id for d in military.contested] == ["pokrovsk-capture-contested"]
    sides = {s.actor.id: s.position for s in military.contested[0].sides}
    assert set(sides) == {"russian-authorities", "ukrainian-authorities"}
    assert [(f.value, f.unit, f.approximate) for f in military.figures] == [
        (701, "area-square-kilometer", True)
    ]
    assert [s.id for s in digest.sources] == ["report-2025-12-02"]


def test_nothing_new_gives_the_standing_situation(seed_state) -> None:
    later = datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
    digest = compose(seed_state, ReaderOptions(locale="fr"), Window.ending(later))
    assert digest.is_empty
    assert all(not s.new for s in digest.sections)
    assert [g.text for g in digest.at_a_glance] == [s.status for s in digest.sections]
    assert digest.window_start == datetime(2026, 1, 9, 7, 0, tzinfo=UTC)
    # contested claims and key figures are standing items: still shown
    assert digest.sections[2].contested and digest.sections[2].figures
    # the Putin meeting of 2 December is past; the undated expectation stays
    assert [d.id for d in digest.watch_next] == ["adjustments-and-guarantees-may-be-needed"]


def test_some_new_only_reports_what_entered_the_window(state_dir: Path) -> None:
    write_developments(
        state_dir,
        extra_development("later-talks", recorded="2025-12-03T09:00:00Z", importance=5),
        extra_development("even-later", recorded="2025-12-05T09:00:00Z", topic="politics"),
    )
    state = load_state(state_dir)
    window = Window(
        start=datetime(2025, 12, 2, 18, tzinfo=UTC), end=datetime(2025, 12, 4, tzinfo=UTC)
    )
    digest = compose(state, ReaderOptions(), window)
    new = [d.id for s in digest.sections for d in s.new]
    assert new == ["later-talks"]
    assert [g.development for g in digest.at_a_glance] == ["later-talks"]
    assert all(d.is_new is False for d in digest.sections[2].contested)
    # a development recorded after the window end is not known yet
    assert "even-later" not in all_shown(digest)


def test_window_start_is_inclusive_and_end_exclusive(state_dir: Path) -> None:
    write_developments(state_dir, extra_development("edge", recorded="2025-12-03T09:00:00Z"))
    state = load_state(state_dir)
    edge = datetime(2025, 12, 3, 9, tzinfo=UTC)
    before = compose(state, ReaderOptions(), Window(start=edge.replace(hour=0), end=edge))
    after = compose(state, ReaderOptions(), Window(start=edge, end=edge.replace(hour=10)))
    assert "edge" not in all_shown(before)
    assert [d.id for s in after.sections for d in s.new] == ["edge"]


def test_topic_filter(seed_state) -> None:
    digest = compose(
        seed_state, ReaderOptions(topics=("sanctions", "military")), Window.ending(DAY_OF_REPORT)
    )
    assert [s.topic for s in digest.sections] == ["sanctions", "military"]
    assert {g.topic for g in digest.at_a_glance} <= {"sanctions", "military"}
    assert digest.watch_next == []
    assert all(
        d.topic in {"sanctions", "military"}
        for d in (*digest.sections[0].new, *digest.sections[1].new)
    )


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        (datetime(2025, 12, 2, 23, 30, tzinfo=UTC), "Asia/Tokyo", date(2025, 12, 3)),
        (datetime(2025, 12, 2, 5, 0, tzinfo=UTC), "America/Los_Angeles", date(2025, 12, 1)),
        (datetime(2025, 12, 2, 5, 0, tzinfo=UTC), "Europe/Paris", date(2025, 12, 2)),
    ],
)
def test_reader_timezone_moves_the_date(seed_state, now, zone, expected) -> None:
    digest = compose(seed_state, ReaderOptions(timezone=zone), Window.ending(now))
    assert digest.date == expected
    assert digest.generated_at.utcoffset() == now.astimezone(digest.generated_at.tzinfo).utcoffset()


@pytest.mark.parametrize(
    ("zone", "hour"),
    [
        ("Europe/Paris", 15),
        ("Europe/Moscow", 17),
        ("America/New_York", 9),
        ("Asia/Tokyo", 23),
        ("UTC", 14),
    ],
)
def test_expected_times_are_converted_to_the_reader_zone(seed_state, zone, hour) -> None:
    digest = compose(seed_state, ReaderOptions(timezone=zone), Window.ending(DAY_OF_REPORT))
    meeting = next(d for d in digest.watch_next if d.id == "putin-meeting-scheduled")
    assert meeting.when is not None and meeting.when.reader_time is not None
    assert (meeting.when.reader_time.hour, meeting.when.reader_time.minute) == (hour, 0)
    assert meeting.when.at == "2025-12-02T17:00" and meeting.when.timezone == "Europe/Moscow"


def test_compose_is_pure(seed_state) -> None:
    window = Window.ending(DAY_OF_REPORT)
    assert compose(seed_state, ReaderOptions(), window) == compose(
        seed_state, ReaderOptions(), window
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ReaderOptions(topics=("weather",)), "unknown topic 'weather'"),
        (ReaderOptions(locale="de"), "unknown locale 'de'"),
        (ReaderOptions(timezone="Mars/Base"), "unknown timezone 'Mars/Base'"),
    ],
)
def test_bad_options_are_config_errors(seed_state, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        compose(seed_state, options, Window.ending(DAY_OF_REPORT))


def test_window_needs_aware_ordered_bounds() -> None:
    with pytest.raises(ConfigError, match="timezone"):
        Window(start=datetime(2025, 1, 1), end=datetime(2025, 1, 2, tzinfo=UTC))
    with pytest.raises(ConfigError, match="after it ends"):
        Window(start=datetime(2025, 1, 3, tzinfo=UTC), end=datetime(2025, 1, 2, tzinfo=UTC))
