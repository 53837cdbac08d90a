"""Polling feeds into the store: real feeds on a real HTTP server, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.errors import ConfigError
from bot.feeds import operations as ops
from bot.feeds import store
from bot.feeds.config import FeedConfig, load_feeds, load_topics, shipped_config
from bot.feeds.ingest import MAX_BACKOFF, next_poll, poll
from bot.feeds.operations import FeedSet
from bot.feeds.topics import TopicRules
from bot.store import states
from bot.store.tables import feed_entries
from tests.conftest import SEED_STATE
from tests.feeds import samples

NOW = datetime(2025, 12, 2, 12, 0, tzinfo=UTC)


def feed_set(path) -> FeedSet:
    topics = load_topics(
        shipped_config("topics.yaml"), known=["talks", "sanctions", "military", "politics"]
    )
    return FeedSet(feeds=load_feeds(path), rules=TopicRules(topics), feeds_path=path,
                   topics_path=shipped_config("topics.yaml"))  # fmt: skip


async def entry_count(db) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(feed_entries))).scalar_one()


async def test_french_and_english_feeds_are_filed_by_topic_once(db, receiver, tmp_path) -> None:
    samples.serve_all(receiver)
    feeds = feed_set(samples.feeds_yaml(receiver, tmp_path / "feeds.yaml", bad=False))
    results = await ops.ingest(db, feeds, feeds.feeds, now=NOW)
    by_feed = {r.feed: r for r in results}
    assert [r.error for r in results] == [None, None, None]
    assert by_feed["Le Quotidien"].filed == [
        "Combats de rue à POKROVSK, selon l'état-major",
        "Les pourparlers de Moscou se prolongent",
    ]
    assert by_feed["Le Quotidien"].unmatched == ["Neige attendue sur Paris"]
    assert by_feed["Daily Wire"].unmatched == ["Quarterly results at a chocolate maker"]
    # the same story from another feed (near-identical title; same link once utm_* is gone)
    assert by_feed["Other Daily"].duplicates == [
        "US sanctions on Rosneft and Lukoil bite into exports!",
        "Envoys gather in Moscow",
    ]
    assert by_feed["Other Daily"].filed == ["Overnight drone attack on Vovchansk"]

    pending = await ops.review_list(db)
    assert [(e.feed_name, e.language, e.topic) for e in pending] == [
        ("Le Quotidien", "fr", "military"),
        ("Le Quotidien", "fr", "talks"),
        ("Daily Wire", "en", "sanctions"),
        ("Daily Wire", "en", "talks"),
        ("Other Daily", "en", "military"),
    ]
    assert [e.title for e in await ops.review_list(db, unmatched=True)] == [
        "Neige attendue sur Paris",
        "Quarterly results at a chocolate maker",
    ]
    listing = {f.name: f for f in await ops.list_feeds(db, feeds)}
    assert (listing["Other Daily"].taken, listing["Other Daily"].duplicates) == (1, 2)
    assert listing["Le Quotidien"].last_success == NOW
    assert listing["Le Quotidien"].unmatched == 1

    # polled again: the French feed answers 304 to its ETag, the others bring nothing new
    stored = await entry_count(db)
    again = await ops.ingest(db, feeds, feeds.feeds, now=NOW + timedelta(hours=1))
    assert [(r.not_modified, r.filed, r.seen) for r in again] == [
        (True, [], 0), (False, [], 3), (False, [], 3)
    ]  # fmt: skip
    assert receiver.hits("/fr.xml")[1].headers["If-None-Match"] == samples.ETAG
    assert receiver.hits("/fr.xml")[1].headers["If-Modified-Since"] == samples.LAST_MODIFIED
    assert await entry_count(db) == stored
    assert (
        await store.poll_state(db, f"{receiver.base}/fr.xml")
    ).last_success_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize("path", sorted(set(samples.BAD) - {"/loop-b"}))
async def test_a_bad_feed_records_its_error_and_writes_nothing(
    db, receiver, tmp_path, caplog, path
) -> None:
    samples.serve_all(receiver)
    feeds = feed_set(samples.feeds_yaml(receiver, tmp_path / "feeds.yaml"))
    bad = next(f for f in feeds.feeds if f.url.endswith(path))
    good = next(f for f in feeds.feeds if f.name == "Daily Wire")
    results = await ops.ingest(db, feeds, [bad, good], now=NOW)
    assert samples.BAD_ERRORS[path] in results[0].error
    assert results[1].error is None and len(results[1].filed) == 2  # the others unaffected
    assert await entry_count(db) == 3  # the good feed's three; none of the bad one's
    state = await store.poll_state(db, bad.url)
    assert samples.BAD_ERRORS[path] in state.last_error
    assert (state.last_error_at, state.last_success_at, state.failures) == (NOW, None, 1)
    assert state.next_poll_at > NOW + bad.interval  # backed off
    assert f"feed 'bad {path}'" in caplog.text and samples.BAD_ERRORS[path] in caplog.text


async def test_a_feed_that_recovers_is_taken_and_its_error_kept_for_the_record(
    db, receiver, tmp_path
) -> None:
    from tests.receivers import reply

    url = receiver.on("/flaky.xml", reply(503, "busy"), samples.feed(samples.FRENCH_RSS))
    feed = FeedConfig(url=url, name="Flaky", language="fr", allow_private=True)
    rules = feed_set(tmp_path / "none.yaml").rules
    first = await poll(db, feed, rules, now=NOW)
    assert first.error == "HTTP 503"
    second = await poll(db, feed, rules, now=NOW + timedelta(hours=2))
    assert second.error is None and len(second.filed) == 2
    state = await store.poll_state(db, url)
    assert (state.failures, state.last_success_at, state.last_error_at) == (
        0,
        NOW + timedelta(hours=2),
        NOW,
    )
    assert state.next_poll_at <= NOW + timedelta(hours=3)


def test_backoff_doubles_and_is_bounded() -> None:
    feed = FeedConfig(url="https://a.example/", name="A", language="en", interval="1h")
    delays = [next_poll(feed, failures=n, now=NOW) - NOW for n in range(12)]
    assert timedelta(minutes=56) < delays[0] <= timedelta(hours=1)
    assert timedelta(hours=3) < delays[2] <= timedelta(hours=4)
    assert max(delays) <= MAX_BACKOFF and delays[-1] > MAX_BACKOFF * 0.9


async def test_the_ssrf_guard_refuses_a_private_feed_unless_allowed(db, receiver, tmp_path) -> None:
    url = receiver.on("/fr.xml", samples.feed(samples.FRENCH_RSS))
    rules = feed_set(tmp_path / "none.yaml").rules
    refused = await poll(db, FeedConfig(url=url, name="Local", language="fr"), rules, now=NOW)
    assert "127.0.0.1 is a loopback address" in refused.error
    assert "allow_private: true" in refused.error
    assert receiver.hits("/fr.xml") == []  # never contacted
    allowed = FeedConfig(url=url, name="Local", language="fr", allow_private=True)
    taken = await poll(db, allowed, rules, now=NOW)
    assert taken.error is None and len(taken.filed) == 2
    assert len(receiver.hits("/fr.xml")) == 1


async def test_review_accept_and_reject(db, receiver, tmp_path) -> None:
    await states.import_state(db, SEED_STATE, now=NOW)
    samples.serve_all(receiver)
    feeds = feed_set(samples.feeds_yaml(receiver, tmp_path / "feeds.yaml", bad=False))
    await ops.ingest(db, feeds, feeds.feeds, now=NOW)
    pending = await ops.review_list(db)
    later = NOW + timedelta(minutes=5)
    done = await ops.accept(db, pending[0].id, now=later, by="ana", importance=4)
    assert (done.status, done.topic, done.importance, done.decided_by) == (
        "accepted",
        "military",
        4,
        "ana",
    )
    moved = await ops.accept(db, pending[1].id, now=later, by="ana", topic="politics")
    assert moved.topic == "politics"
    gone = await ops.reject(db, pending[2].id, now=later, by="ben", reason="opinion piece")
    assert (gone.status, gone.reason) == ("rejected", "opinion piece")
    with pytest.raises(ConfigError, match=f"entry {pending[2].id} is already rejected"):
        await ops.accept(db, pending[2].id, now=later, by="ana")
    with pytest.raises(ConfigError, match="unknown topic 'weather'"):
        await ops.accept(db, pending[3].id, now=later, by="ana", topic="weather")
    with pytest.raises(ConfigError, match="no feed entry 9999"):
        await ops.reject(db, 9999, now=later, by="ana")
    unmatched = (await ops.review_list(db, unmatched=True))[0]
    with pytest.raises(ConfigError, match="matches no topic: give one with --topic"):
        await ops.accept(db, unmatched.id, now=later, by="ana")
    assert [e.id for e in await ops.review_list(db)] == [pending[3].id, pending[4].id]

    shown = await store.reports(db, start=NOW, end=later + timedelta(seconds=1))
    assert [(n.title, n.topic, n.source, n.language) for n in shown] == [
        ("Combats de rue à POKROVSK, selon l'état-major", "military", "Le Quotidien", "fr"),
        ("Les pourparlers de Moscou se prolongent", "politics", "Le Quotidien", "fr"),
    ]
    assert shown[0].url == "https://quotidien.example/pokrovsk"  # tracking removed
    assert await store.reports(db, start=NOW, end=later) == []  # accepted at `later`


async def test_an_auto_feed_publishes_directly(db, receiver, tmp_path) -> None:
    samples.serve_all(receiver)
    feeds = feed_set(
        samples.feeds_yaml(receiver, tmp_path / "feeds.yaml", bad=False, publish="auto")
    )
    await ops.ingest(db, feeds, feeds.feeds[:1], now=NOW)
    assert await ops.review_list(db) == []
    shown = await store.reports(db, start=NOW, end=NOW + timedelta(seconds=1))
    assert [n.topic for n in shown] == ["military", "talks"]
