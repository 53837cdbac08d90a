"""Topic rules, duplicates and feed parsing, on their own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import ConfigError
from bot.feeds.config import load_feeds, load_topics, shipped_config
from bot.feeds.dedupe import canonical_link, same_title
from bot.feeds.fetch import FeedError
from bot.feeds.parse import parse
from bot.feeds.topics import TopicRules
from tests.feeds import samples

TOPICS = ["talks", "sanctions", "military", "politics"]


@pytest.fixture(scope="module")
def rules() -> TopicRules:
    return TopicRules(load_topics(shipped_config("topics.yaml"), known=TOPICS))


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("US sanctions on ROSNEFT", "sanctions"),
        ("Lukoil sells its foreign assets", "sanctions"),
        ("Combats à Pokrovsk", "military"),
        ("La ville de VOVTCHANSK", "military"),
        ("Vovchansk under fire", "military"),
        ("Night of drones over Kyiv", "military"),
        ("Witkoff et Kushner à Moscou", "talks"),
        ("Kirill Dmitriev says talks were useful", "talks"),
        ("Reprise des pourparlers", "talks"),
        ("Les negociations reprennent", "talks"),  # accents ignored
        ("Nouvelles NÉGOCIATIONS", "talks"),
        ("Iermak a démissionné", "politics"),
    ],
)
def test_keywords_file_an_entry_under_its_topic(rules: TopicRules, text: str, topic: str) -> None:
    assert rules.match(text) == topic


@pytest.mark.parametrize(
    "text",
    [
        "Snow expected in Paris",
        "Rosneftegaz results",  # no match inside a longer word
        "Pokrovskaya street festival",
        "Transanctions",
    ],
)
def test_no_topic_when_no_keyword_on_word_boundaries(rules: TopicRules, text: str) -> None:
    assert rules.match(text) is None


def test_a_feed_restricted_to_topics_only_files_under_them(rules: TopicRules) -> None:
    assert rules.match("Sanctions and drones", allowed=["military"]) == "military"
    assert rules.match("Sanctions on Rosneft", allowed=["military"]) is None


def test_the_topic_with_most_keywords_wins(rules: TopicRules) -> None:
    assert rules.match("Sanctions on Rosneft and Lukoil discussed in peace talks") == "sanctions"


def test_topics_file_with_an_unknown_topic_names_it(tmp_path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text("topics:\n  talks:\n    en: [talks]\n  weather:\n    en: [snow]\n")
    with pytest.raises(ConfigError, match=r"topics.yaml:4: unknown topic 'weather'"):
        load_topics(path, known=TOPICS)


def test_feeds_file_problems_name_file_line_and_field(tmp_path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: https://a.example/rss\n    name: A\n    language: de\n")
    with pytest.raises(ConfigError, match=r"feeds.yaml:4: feeds.0.language"):
        load_feeds(path)
    path.write_text("feeds:\n  - url: ftp://a.example/rss\n    name: A\n    language: en\n")
    with pytest.raises(ConfigError, match=r"feeds.yaml:2: feeds.0.url"):
        load_feeds(path)
    path.write_text("feeds: [\n")
    with pytest.raises(ConfigError, match=r"feeds.yaml:\d+: not valid YAML"):
        load_feeds(path)


def test_the_shipped_feeds_file_enables_no_feed() -> None:
    assert load_feeds(shipped_config("feeds.yaml")) == []


def test_tracking_parameters_and_fragments_do_not_make_a_new_link() -> None:
    a = canonical_link("https://Wire.example/talks?utm_source=x&id=3&fbclid=y#top")
    assert a == canonical_link("https://wire.example/talks?id=3")
    assert a != canonical_link("https://wire.example/talks?id=4")


def test_near_identical_titles() -> None:
    assert same_title("US sanctions on Rosneft bite", "US Sanctions on Rosneft bite!")
    assert same_title("Pourparlers à Moscou", "Pourparlers a Moscou")
    assert not same_title("US sanctions on Rosneft bite", "Drones hit Vovchansk overnight")


@pytest.mark.parametrize(
    ("body", "titles"),
    [
        (samples.RSS_091, ["Sanctions widened"]),
        (samples.RDF_10, ["Drones over Pokrovsk"]),
        (samples.FRENCH_RSS, [
            "Combats de rue à POKROVSK, selon l'état-major",
            "Les pourparlers de Moscou se prolongent",
            "Neige attendue sur Paris",
        ]),
        (samples.ENGLISH_ATOM, [
            "US sanctions on Rosneft and Lukoil bite into exports",
            "Witkoff and Kushner meet Dmitriev before Kremlin talks",
            "Quarterly results at a chocolate maker",
        ]),
        (samples.ENGLISH_JSON, [
            "US sanctions on Rosneft and Lukoil bite into exports!",
            "Envoys gather in Moscow",
            "Overnight drone attack on Vovchansk",
        ]),
    ],
)  # fmt: skip
def test_every_feed_format_is_read(body: str, titles: list[str]) -> None:
    assert [e.title for e in parse(body.encode())] == titles


def test_entries_keep_their_link_date_and_plain_summary() -> None:
    first = parse(samples.FRENCH_RSS.encode())[0]
    assert first.guid == "fr-1"
    assert first.link == "https://quotidien.example/pokrovsk?utm_source=rss"
    assert first.published == datetime(2025, 12, 2, 9, tzinfo=UTC)
    assert first.summary == "L'armée ukrainienne dit tenir des positions."
    item = parse(samples.ENGLISH_JSON.encode(), content_type="application/feed+json")[2]
    assert (item.link, item.summary) == ("https://other.example/drones", "Drones hit the town.")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (samples.MALFORMED.encode(), "malformed XML at line 2"),
        (samples.HTML_PAGE.encode(), "not a feed: an HTML page"),
        (samples.WRONG_ENCODING, "wrong character encoding"),
        (b'{"items": []}', "not a feed: JSON without a JSON Feed version"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": 3}', "'items' is not a list"),
        (b"{not json", "malformed JSON"),
    ],
)
def test_bad_bodies_are_refused_whole_with_the_reason(body: bytes, problem: str) -> None:
    with pytest.raises(FeedError, match=problem):
        parse(body)
