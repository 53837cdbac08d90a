"""The state's editing and the feeds' review through the HTTP API, over real HTTP on
127.0.0.1 against SQLite and PostgreSQL: an edit session shows in the preview, a concurrent
edit is refused with 409, bad YAML gets 422 naming its lines, entries from a local feed are
accepted and rejected, and feed polls are counted in the metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.feeds import operations as ops
from bot.feeds.poller import FeedPoller
from bot.store import states
from bot.web.metrics import Metrics
from tests.conftest import SEED_STATE
from tests.feeds import samples
from tests.receivers import reply
from tests.state.test_edit_cli import NEW_DEV
from tests.web.conftest import api_client, api_settings, served
from tests.web.test_api import problem

POKROVSK_DEV = "pokrovsk-capture-contested"
POKROVSK = "Combats de rue à POKROVSK, selon l'état-major"
WITKOFF = "Witkoff and Kushner meet Dmitriev before Kremlin talks"
SNOW = "Neige attendue sur Paris"
YAML = {"content-type": "application/yaml"}


@pytest.fixture
async def api(db, tmp_path):
    await states.import_state(db, SEED_STATE, now=datetime.now(UTC))
    async with api_client(db, api_settings(tmp_path)) as client:
        yield client, db


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_an_edit_session_shows_each_change_in_the_preview(api) -> None:
    client, _ = api
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    added = ok(
        await client.post(
            "/api/v1/state/developments",
            content=NEW_DEV.encode(),
            headers=YAML,
            params={"because": "announced this morning", "by": "alice"},
        ),
        201,
    )
    assert added["item"] == "kyiv-talks-announced" and added["version"] == 1
    assert added["change"] == "add kyiv-talks-announced" and added["number"] == 2
    updated = ok(
        await client.patch(
            f"/api/v1/state/developments/{POKROVSK_DEV}",
            json={
                "standing": "confirmed",
                "title_en": "Pokrovsk taken by Russia",
                "because": "Ukraine confirmed the withdrawal",
                "by": "alice",
            },
        )
    )
    assert (updated["item"], updated["version"]) == (POKROVSK_DEV, 2)
    assert updated["change"] == f"update {POKROVSK_DEV} (standing → confirmed, title)"
    status = ok(
        await client.put(
            "/api/v1/state/topics/military/status",
            json={
                "en": "Pokrovsk has fallen.",
                "fr": "Pokrovsk est tombée.",
                "because": "new situation",
                "by": "alice",
            },
        )
    )
    assert status["change"] == "status of military"
    retracted = ok(
        await client.post(
            "/api/v1/state/developments/white-house-optimistic/retract",
            json={"because": "misattributed quote"},
        )
    )
    assert retracted["change"] == "retract white-house-optimistic"
    state = ok(await client.get("/api/v1/state"))
    assert state["revision"] == retracted["revision"]

    preview = await client.get("/api/v1/preview", params={"since": since, "timezone": "UTC"})
    text = preview.text
    assert preview.status_code == 200, text
    assert text.count("New round of talks announced") == 2  # at a glance and in its section
    assert "Standing changed: Pokrovsk taken by Russia (contested → confirmed)" in text
    assert text.count("Reason: Ukraine confirmed the withdrawal") == 1
    assert 'Retracted: White House says it is "very optimistic"' in text
    assert text.count("Reason: misattributed quote") == 1
    assert "Pokrovsk has fallen." in text

    history = ok(await client.get("/api/v1/state/history"))
    assert [(r["number"], r["by"], r["because"]) for r in history[1:]] == [
        (2, "alice", "announced this morning"),
        (3, "alice", "Ukraine confirmed the withdrawal"),
        (4, "alice", "new situation"),
        (5, "api", "misattributed quote"),  # no by, no BRIEFING_EDITOR
    ]
    assert history[-1]["revision"] == retracted["revision"]
    versions = ok(await client.get(f"/api/v1/state/history/{POKROVSK_DEV}"))
    assert [(v["version"], v["kind"], v["standing"], v["by"]) for v in versions] == [
        (1, "recorded", "contested", None),
        (2, "standing", "confirmed", "alice"),
    ]
    statuses = ok(await client.get("/api/v1/state/history/military"))
    assert statuses[-1]["kind"] == "status" and statuses[-1]["text"] == "Pokrovsk has fallen."
    problem(await client.get("/api/v1/state/history/no-such-thing"), 404)


async def test_a_second_editor_is_refused_with_409_unless_at_the_expected_revision(
    api,
) -> None:
    client, db = api
    path = f"/api/v1/state/developments/{POKROVSK_DEV}"
    first = {"summary_en": "Taken.", "because": "a", "by": "ann"}
    assert (ok(await client.patch(path, json=first)))["version"] == 2
    change = {"summary_fr": "Prise.", "because": "b", "by": "ben"}
    refused = problem(await client.patch(path, json=change), 409)
    assert "last changed by ann" in refused["detail"] and "2" in refused["detail"]
    stale = problem(await client.patch(path, json={**change, "expect_revision": 1}), 409)
    assert "is at revision 2, not 1" in stale["detail"]
    retract = problem(await client.post(f"{path}/retract", json={"because": "c"}), 409)
    assert "last changed by ann" in retract["detail"]
    assert len(await states.revisions(db)) == 2  # nothing stored by the refused ones
    done = ok(await client.patch(path, json={**change, "expect_revision": 2}))
    assert done["version"] == 3
    versions = await states.item_history(db, POKROVSK_DEV)
    assert [v.by for v in versions] == [None, "ann", "ben"]


async def test_bad_input_is_refused_naming_the_line_or_the_field(api) -> None:
    client, db = api
    new = "/api/v1/state/developments"
    broken = NEW_DEV.replace("standing: confirmed", "standing: rumoured").replace(
        "importance: 5", "importance: 9"
    )
    bad = problem(
        await client.post(new, content=broken.encode(), headers=YAML, params={"because": "x"}),
        422,
    )
    lines = {e["line"]: e["msg"] for e in bad["errors"]}
    assert set(lines) == {5, 6} and "standing" in lines[5] and "importance" in lines[6]
    assert bad["detail"] == f"line 5: {lines[5]}; line 6: {lines[6]}"
    wrapped = problem(await client.post(new, json={"yaml": broken, "because": "x"}), 422)
    assert wrapped["detail"] == bad["detail"]
    topic = NEW_DEV.replace("topic: talks", "topic: cooking")
    named = problem(await client.post(new, json={"yaml": topic, "because": "x"}), 422)
    assert named["detail"].startswith("line 3: ") and "cooking" in named["detail"]
    syntax = problem(
        await client.post(new, json={"yaml": "developments:\n  - id: [a\n", "because": "x"}),
        422,
    )
    assert syntax["detail"].startswith("line ") and "invalid YAML" in syntax["detail"]
    reason = problem(await client.post(new, content=NEW_DEV.encode(), headers=YAML), 422)
    assert "because" in reason["detail"]
    typed = problem(await client.post(new, json={"yaml": NEW_DEV, "colour": "red"}), 422)
    assert ["body", "colour"] in [e["loc"] for e in typed["errors"]]
    other = {"content-type": "text/csv"}
    problem(await client.post(new, content=b"a,b", headers=other, params={"because": "x"}), 415)

    dev = f"/api/v1/state/developments/{POKROVSK_DEV}"
    standing = problem(await client.patch(dev, json={"standing": "rumoured", "because": "x"}), 422)
    assert "standing" in standing["detail"] and "rumoured" in standing["detail"]
    source = problem(await client.patch(dev, json={"add_source": ["nope"], "because": "x"}), 422)
    assert "add_source" in source["detail"]
    nothing = problem(await client.patch(dev, json={"because": "x"}), 422)
    assert "nothing to change" in nothing["detail"]
    blank = problem(await client.patch(dev, json={"summary_en": "T.", "because": "  "}), 422)
    assert "because" in blank["detail"]
    unknown = "/api/v1/state/developments/no-such-dev"
    missing = problem(await client.patch(unknown, json={"summary_en": "T.", "because": "x"}), 404)
    assert "no-such-dev" in missing["detail"]
    problem(await client.post(f"{unknown}/retract", json={"because": "x"}), 404)
    status = problem(
        await client.put(
            "/api/v1/state/topics/cooking/status", json={"en": "a", "fr": "b", "because": "x"}
        ),
        404,
    )
    assert "cooking" in status["detail"]
    problem(await client.patch("/api/v1/state/developments/Not%20an%20id", json={}), 422)
    assert len(await states.revisions(db)) == 1  # nothing stored


@pytest.fixture
def feeds_file(receiver, tmp_path):
    samples.serve_all(receiver)
    return samples.feeds_yaml(receiver, tmp_path / "feeds.yaml", bad=False)


async def test_entries_of_a_local_feed_are_accepted_and_rejected(
    db, tmp_path, receiver, feeds_file
) -> None:
    await states.import_state(db, SEED_STATE, now=datetime.now(UTC))
    settings = api_settings(tmp_path, feeds_file=feeds_file)
    feed_set = await ops.load_feed_set(db, settings)
    await ops.ingest(db, feed_set, feed_set.feeds, now=datetime.now(UTC))
    async with api_client(db, settings) as client:
        feeds = {f["name"]: f for f in ok(await client.get("/api/v1/feeds"))}
        assert (feeds["Daily Wire"]["taken"], feeds["Other Daily"]["duplicates"]) == (2, 2)
        assert feeds["Le Quotidien"]["last_success"] and feeds["Le Quotidien"]["unmatched"] == 1
        assert "/fr.xml" not in str(feeds)  # masked, as the CLI lists them
        assert feeds["Le Quotidien"]["url"].startswith(f"{receiver.base}/…")
        pending = {e["title"]: e for e in ok(await client.get("/api/v1/review"))}
        assert len(pending) == 5 and pending[POKROVSK]["topic"] == "military"
        assert pending[POKROVSK]["feed_url"].startswith(f"{receiver.base}/…")
        unmatched = ok(await client.get("/api/v1/review", params={"unmatched": "true"}))
        assert [e["title"] for e in unmatched] == [SNOW, "Quarterly results at a chocolate maker"]

        entry = pending[POKROVSK]["id"]
        accepted = ok(
            await client.post(
                f"/api/v1/review/{entry}/accept", json={"importance": 4, "by": "carol"}
            )
        )
        assert (accepted["status"], accepted["importance"], accepted["decided_by"]) == (
            "accepted",
            4,
            "carol",
        )
        rejected = ok(
            await client.post(
                f"/api/v1/review/{pending[WITKOFF]['id']}/reject", json={"because": "dup"}
            )
        )
        assert (rejected["status"], rejected["reason"], rejected["decided_by"]) == (
            "rejected",
            "dup",
            "api",
        )
        again = problem(await client.post(f"/api/v1/review/{pending[WITKOFF]['id']}/reject"), 422)
        assert "already rejected (by api)" in again["detail"]
        snow = unmatched[0]["id"]
        no_topic = problem(await client.post(f"/api/v1/review/{snow}/accept"), 422)
        assert "matches no topic" in no_topic["detail"]
        problem(await client.post(f"/api/v1/review/{snow}/accept", json={"topic": "cooking"}), 422)
        problem(await client.post("/api/v1/review/99999/accept"), 404)
        problem(await client.post(f"/api/v1/review/{entry}/accept", json={"importance": 9}), 422)
        left = {e["title"] for e in ok(await client.get("/api/v1/review"))}
        assert left == set(pending) - {POKROVSK, WITKOFF}

        preview = await client.get("/api/v1/preview")
        assert "In the news" in preview.text and POKROVSK in preview.text
        assert "Le Quotidien" in preview.text and WITKOFF not in preview.text


async def test_feed_polls_are_counted_in_the_metrics(db, tmp_path, receiver) -> None:
    await states.import_state(db, SEED_STATE, now=datetime.now(UTC))
    receiver.on("/fr.xml", samples.conditional(samples.FRENCH_RSS))
    receiver.on("/missing.xml", reply(404, "not found"))
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(
        "feeds:\n"
        f"  - {{url: '{receiver.base}/fr.xml', name: Le Quotidien, language: fr,"
        " allow_private: true}\n"
        f"  - {{url: '{receiver.base}/missing.xml', name: Gone, language: en,"
        " allow_private: true}\n",
        encoding="utf-8",
    )
    settings = api_settings(tmp_path, feeds_file=feeds_file)
    moment = [datetime.now(UTC)]
    poller = FeedPoller(db, await ops.load_feed_set(db, settings), clock=lambda: moment[0])
    metrics = Metrics()
    poller.on_polled.append(metrics.polled)
    await poller.poll_due()
    moment[0] += timedelta(hours=3)  # both due again: the first answers 304
    await poller.poll_due()
    async with (
        served(db, settings=settings, metrics=metrics) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        scraped = (await client.get("/metrics")).text
    for line in (
        'briefing_feed_polls_total{feed="Le Quotidien",outcome="ok"} 1.0',
        'briefing_feed_polls_total{feed="Le Quotidien",outcome="not_modified"} 1.0',
        'briefing_feed_polls_total{feed="Gone",outcome="error"} 2.0',
        'briefing_feed_entries_total{feed="Le Quotidien"} 2.0',
        'briefing_feed_entries_total{feed="Gone"} 0.0',
    ):
        assert line in scraped, scraped
