"""The feed commands end to end: ingest, list, review, then the accepted report in a preview
(every format, both languages) and in a digest the worker delivers to a local receiver."""

from __future__ import annotations

import json

import pytest

from tests.feeds import samples
from tests.processes import bot_env, cli

FORMATS = ["text", "markdown", "html", "json", "slack", "teams", "discord", "mattermost",
           "generic", "telegram", "matrix", "googlechat", "ntfy", "zulip"]  # fmt: skip
POKROVSK = "Combats de rue à POKROVSK, selon l'état-major"
ROSNEFT = "US sanctions on Rosneft and Lukoil bite into exports"


@pytest.fixture
def env(tmp_path, receiver):
    samples.serve_all(receiver)
    feeds = samples.feeds_yaml(receiver, tmp_path / "feeds.yaml", bad=False)
    return bot_env(tmp_path, BRIEFING_FEEDS_FILE=str(feeds))


async def review(env) -> dict[str, int]:
    code, out, err = await cli("review", "list", "--json", env=env)
    assert code == 0, err
    return {e["title"]: e["id"] for e in json.loads(out)}


async def test_ingest_review_and_the_report_in_every_digest(env, receiver, tmp_path) -> None:
    code, out, err = await cli("ingest", "--all", env=env)
    assert code == 0, err
    assert "Le Quotidien: 2 entries filed, 1 matching no topic, 0 duplicate(s)" in out
    assert "  no topic: Neige attendue sur Paris" in out
    assert "  duplicate: Envoys gather in Moscow" in out

    code, out, err = await cli("feeds", "--json", env=env)
    listing = {f["name"]: f for f in json.loads(out)}
    assert listing["Daily Wire"]["taken"] == 2 and listing["Daily Wire"]["last_error"] is None
    assert listing["Daily Wire"]["last_success"] is not None
    code, out, err = await cli("feeds", env=env)
    assert "Other Daily" in out and "duplicates" in out

    ids = await review(env)
    assert len(ids) == 5
    code, out, err = await cli("review", "accept", str(ids[POKROVSK]), "--importance", "4", env=env)
    assert code == 0, err
    assert out.startswith(f"entry {ids[POKROVSK]} accepted under military")
    code, out, err = await cli("review", "accept", str(ids[ROSNEFT]), "--json", env=env)
    assert json.loads(out)["status"] == "accepted"
    rejected = "Witkoff and Kushner meet Dmitriev before Kremlin talks"
    code, out, err = await cli(
        "review", "reject", str(ids[rejected]), "--because", "dup", "--by", "ben", env=env
    )
    assert code == 0, err
    code, out, err = await cli("review", "reject", str(ids[rejected]), env=env)
    assert (code, err.strip()) == (2, f"error: entry {ids[rejected]} is already rejected (by ben)")
    assert set(await review(env)) == set(ids) - {POKROVSK, ROSNEFT, rejected}

    for fmt in FORMATS:
        code, out, err = await cli("preview", "--format", fmt, env=env)
        assert code == 0, (fmt, err)
        assert "In the news" in out or fmt == "json", fmt
        assert "Le Quotidien" in out and "Daily Wire" in out, fmt
        assert "quotidien.example/pokrovsk" in out and "https://wire.example/rosneft" in out, fmt
        assert "Kushner meet Dmitriev" not in out, fmt  # rejected
        assert "Overnight drone attack" not in out, fmt  # still waiting
    code, out, err = await cli("preview", "--format", "json", env=env)
    news = json.loads(out)["news"]
    assert [(n["topic"], n["language"], n["source"], n["standing"]) for n in news] == [
        ("military", "fr", "Le Quotidien", "reported"),
        ("sanctions", "en", "Daily Wire", "reported"),
    ]
    code, out, err = await cli("preview", "--locale", "fr", env=env)
    assert "Dans la presse" in out and "(en anglais)" not in out
    section = out.split("== Situation militaire ==")[1].split("\n== ")[0]
    assert "Dans la presse" in section and POKROVSK in section and "en français" in section
    assert section.index("Dans la presse") > section.index("Affirmations contestées")
    code, out, err = await cli("preview", "--topics", "talks", env=env)
    assert "In the news" not in out  # only the reader's topics

    # delivered by the worker to a local receiver, under its topic, with source and link
    code, out, err = await cli("subscribe", "webhook", receiver.on("/hook"), "--json", env=env)
    assert code == 0, err
    code, out, err = await cli("send", "--subscription", "1", env=env)
    assert code == 0, err
    body = receiver.hits("/hook")[0].json()
    assert [n["title"] for n in body["digest"]["news"]] == [POKROVSK, ROSNEFT]
    sanctions = body["text"].split("== Sanctions ==")[1].split("\n== ")[0]
    assert "In the news:" in sanctions and ROSNEFT in sanctions
    assert "Daily Wire" in sanctions and "<https://wire.example/rosneft>" in sanctions
    assert '<a href="https://wire.example/rosneft"' in body["html"]


async def test_ingest_one_feed_by_url_name_or_file_and_report_a_bad_one(
    env, receiver, tmp_path
) -> None:
    code, out, err = await cli("ingest", f"{receiver.base}/fr.xml", env=env)
    assert code == 0 and out.startswith("Le Quotidien: 2 entries filed"), err
    code, out, err = await cli("ingest", "Le Quotidien", env=env)
    assert (code, out.strip()) == (0, "Le Quotidien: not modified")
    page = tmp_path / "wire.atom"
    page.write_text(samples.ENGLISH_ATOM, encoding="utf-8")
    code, out, err = await cli(
        "ingest", str(page), "--name", "Saved wire", "--language", "en", env=env
    )
    assert code == 0 and out.startswith("Saved wire: 2 entries filed"), err
    code, out, err = await cli("ingest", str(page), env=env)
    assert (code, err.strip()) == (
        2, f"error: {str(page)!r} is not a feed of feeds.yaml: give its language with --language en|fr"
    )  # fmt: skip
    url = receiver.on("/gone.xml", samples.feed(samples.HTML_PAGE, "text/html"))
    code, out, err = await cli("ingest", url, "--language", "en", "--json", env=env)
    assert code == 1
    assert "refused" in json.loads(out)[0]["error"]  # not in feeds.yaml: no allow_private
    code, out, err = await cli("ingest", env=env)
    assert (code, err.strip()) == (2, "error: give a feed (URL, name or file) or --all")


async def test_bad_feeds_each_get_their_error_listed(tmp_path, receiver) -> None:
    samples.serve_all(receiver)
    feeds = samples.feeds_yaml(receiver, tmp_path / "feeds.yaml")
    env = bot_env(tmp_path, BRIEFING_FEEDS_FILE=str(feeds))
    code, out, err = await cli("ingest", "--all", env=env)
    assert code == 1
    for path, problem in samples.BAD_ERRORS.items():
        assert f"bad {path}: error: " in out and problem in out, path
    assert "Other Daily: 1 entry filed" in out
    code, out, err = await cli("feeds", "--json", env=env)
    for feed in json.loads(out):
        if feed["name"].startswith("bad "):
            assert samples.BAD_ERRORS[feed["name"][4:]] in feed["last_error"]
            assert feed["last_success"] is None and feed["taken"] == 0
        else:
            assert feed["last_error"] is None and feed["last_success"]


async def test_a_broken_feeds_file_is_an_error_naming_file_and_line(tmp_path) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        "feeds:\n  - url: https://a.example/\n    name: A\n    language: en\n    topics: [weather]\n"
    )
    env = bot_env(tmp_path, BRIEFING_FEEDS_FILE=str(feeds))
    code, out, err = await cli("feeds", env=env)
    assert code == 2 and "unknown topic 'weather'" in err and str(feeds) in err
