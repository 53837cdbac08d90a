"""``briefing run`` polls every feed on its own: a real process, real feeds on 127.0.0.1."""

from __future__ import annotations

import json
import signal

import pytest

from tests.feeds import samples
from tests.processes import bot_env, cli, start, wait_for

pytestmark = pytest.mark.slow


async def test_run_polls_the_feeds_and_records_each_outcome(tmp_path, receiver) -> None:
    samples.serve_all(receiver)
    feeds = samples.feeds_yaml(receiver, tmp_path / "feeds.yaml", interval="1m")
    env = bot_env(tmp_path, BRIEFING_FEEDS_FILE=str(feeds))
    log = tmp_path / "run.log"
    process = await start("run", env=env, log=log)
    try:
        await wait_for(lambda: b"running (worker" in log.read_bytes(), timeout=60)
        # every feed polled once: the good ones filed, each bad one with its error
        await wait_for(
            lambda: all(receiver.hits(p) for p in (*samples.GOOD, *samples.BAD)), timeout=60
        )
        await wait_for(
            lambda: log.read_text().count("feed '") >= len(samples.GOOD) + len(samples.BAD) - 1,
            timeout=30,
        )
        code, out, err = await cli("feeds", "--json", env=env)
        assert code == 0, err
        listing = {f["name"]: f for f in json.loads(out)}
        assert listing["Le Quotidien"]["taken"] == 2 and listing["Le Quotidien"]["last_success"]
        # polled together, in any order: the story is taken once, its copy counted
        wires = (listing["Daily Wire"], listing["Other Daily"])
        assert sum(f["duplicates"] for f in wires) == 2
        for path, problem in samples.BAD_ERRORS.items():
            if path != "/loop-b":
                assert problem in listing[f"bad {path}"]["last_error"], path
        text = log.read_text()
        assert "feed 'bad /page.html'" in text and "not a feed: an HTML page" in text
        assert "Traceback" not in text
        code, out, err = await cli("review", "list", "--json", env=env)
        assert len(json.loads(out)) == 5
        # the French feed's next poll (a minute later) is conditional and answered 304
        await wait_for(lambda: len(receiver.hits("/fr.xml")) >= 2, timeout=90)
        assert receiver.hits("/fr.xml")[1].headers["If-None-Match"] == samples.ETAG
        await wait_for(lambda: "feed 'Le Quotidien': not modified" in log.read_text(), timeout=15)
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    assert process.returncode == 0, log.read_text()
    assert "stopped" in log.read_text()
