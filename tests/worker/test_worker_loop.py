"""The worker loop with outputs installed as plugins: how many sends run at once, what an
error that quotes the target's URL leaves in the delivery log, and the start-up check."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from datetime import timedelta

import pytest

from bot.delivery import RetryPolicy
from bot.digest import DigestRenderer
from bot.errors import ConfigError
from bot.outputs import output_classes
from bot.store import outbox, states
from bot.store import subscriptions as subs
from bot.worker import Worker
from tests.conftest import SEED_STATE
from tests.test_worker import PERIOD, add, finish, queue, utc_now

PLUGINS = """
import asyncio

from bot.errors import ConfigError, TargetError
from bot.outputs import Output, Receipt

ACTIVE = {"now": 0, "peak": 0, "sent": 0}


class CountingOutput(Output):
    name = "counting"
    formats = ("text",)

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        ACTIVE["now"] += 1
        ACTIVE["sent"] += 1
        ACTIVE["peak"] = max(ACTIVE["peak"], ACTIVE["now"])
        try:
            await asyncio.sleep(0.05)
        finally:
            ACTIVE["now"] -= 1
        return Receipt("200", "ok")


class LeakyOutput(Output):
    name = "leaky"
    formats = ("text",)

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        raise RuntimeError(f"could not post to {target.address}")


class RefusingOutput(Output):
    name = "refusing"
    formats = ("text",)

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        raise TargetError(f"{target.address} is not allowed any more")


class MisconfiguredOutput(Output):
    name = "misconfigured"
    formats = ("text",)

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        raise ConfigError("BRIEFING_SOMETHING is not set")
"""
SECRET_URL = "https://hooks.example.org/services/T0000/B1111/sEcReTtOkEn42"


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    (tmp_path / "loop_plugins.py").write_text(PLUGINS, encoding="utf-8")
    dist = tmp_path / "loop_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: loop-plugins\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[briefing.outputs]\ncounting = loop_plugins:CountingOutput\n"
        "leaky = loop_plugins:LeakyOutput\nrefusing = loop_plugins:RefusingOutput\n"
        "misconfigured = loop_plugins:MisconfiguredOutput\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    output_classes.cache_clear()
    yield
    sys.modules.pop("loop_plugins", None)
    output_classes.cache_clear()


def worker(db, ctx, **kwargs) -> Worker:
    kwargs.setdefault("policy", RetryPolicy(attempts=2, base=0.02, cap=0.02))
    return Worker(db, ctx, renderer=DigestRenderer(), clock=utc_now, **kwargs)


async def test_no_more_sends_at_once_than_the_concurrency(db, ctx, plugins) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    created = [await add(db, f"somewhere/{n}", kind="counting") for n in range(12)]
    ids = await queue(db, [s.id for s in created])
    done = await finish(worker(db, ctx, concurrency=3), ids)
    assert {r.status for r in done} == {"delivered"}
    active = sys.modules["loop_plugins"].ACTIVE
    assert active["peak"] == 3 and active["now"] == 0


async def test_errors_that_quote_the_target_keep_its_token_out_of_the_log(
    db,
    ctx,
    plugins,
) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    leaky = await add(db, SECRET_URL, kind="leaky")
    refusing = await add(db, SECRET_URL, kind="refusing")
    ids = await queue(db, [leaky.id, refusing.id])
    rows = {r.subscription_id: r for r in await finish(worker(db, ctx), ids)}
    for row in rows.values():
        assert "sEcReTtOkEn42" not in (row.last_answer or "")
        assert "B1111" not in (row.last_answer or "")
    bug, refused = rows[leaky.id], rows[refusing.id]
    assert (bug.status, bug.attempts, bug.last_status) == ("dead", 2, "error")
    assert (bug.last_answer or "").startswith("unexpected error: RuntimeError: could not post to")
    assert (refused.status, refused.attempts, refused.last_status) == ("dead", 1, "error")
    assert (refused.last_answer or "").endswith("is not allowed any more")
    assert (refused.last_answer or "").startswith("https://…")  # masked, not dropped


async def test_the_start_up_check_passes_before_any_state_is_imported(db, ctx) -> None:
    await worker(db, ctx).check()


async def test_the_start_up_check_renders_every_language(db, ctx, tmp_path) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    override = tmp_path / "templates"
    override.mkdir()
    (override / "digest.chat.j2").write_text(
        '{% if d.locale == "fr" %}{{ 1 / 0 }}{% endif %}{{ d.story }}\n', encoding="utf-8"
    )
    checked = Worker(db, ctx, renderer=DigestRenderer(templates_dir=override), clock=utc_now)
    with pytest.raises(ConfigError, match="ZeroDivisionError"):
        await checked.check()
    await checked.close()


async def test_a_window_covers_the_day_before_a_first_digest(db, ctx, plugins) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    sub = await add(db, "somewhere", kind="counting")
    (row,) = await finish(worker(db, ctx), await queue(db, [sub.id]))
    assert (row.window_start, row.window_end) == (PERIOD - timedelta(hours=24), PERIOD)
    assert row.state_revision == await states.latest_revision(db)
    assert (row.status, row.last_status, row.last_answer, row.parts) == (
        "delivered",
        "200",
        "ok",
        1,
    )


async def test_the_log_says_what_failed_and_what_happens_next(
    db,
    ctx,
    plugins,
    caplog,
) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    leaky = await add(db, SECRET_URL, kind="leaky")
    broken = await add(db, "anywhere", kind="misconfigured")
    ids = await queue(db, [leaky.id, broken.id])
    with caplog.at_level(logging.INFO, logger="briefing.worker"):
        rows = {r.subscription_id: r for r in await finish(worker(db, ctx), ids)}
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "briefing.worker"]
    bug = rows[leaky.id].delivery_id
    retry = [m for level, m in said if level == "INFO" and m.startswith(f"delivery {bug} ")]
    assert len(retry) == 1 and "attempt 1 failed (error unexpected error: RuntimeError" in retry[0]
    assert "next try at 20" in retry[0] and retry[0].endswith(("Z", "+00:00"))
    assert (
        "WARNING",
        f"delivery {bug} (subscription {leaky.id}) failed for good after 2 attempt(s): error "
        f"{rows[leaky.id].last_answer}",
    ) in said
    errors = [m for level, m in said if level == "ERROR" and m.startswith(f"delivery {bug} ")]
    assert len(errors) == 2 and all(
        m.startswith(
            f"delivery {bug} (subscription {leaky.id}) failed with an unexpected error\n"
            "Traceback (most recent call last):"
        )
        and m.endswith("RuntimeError: could not post to https://…/…En42")
        for m in errors
    )  # the traceback, with the target's token hidden
    assert "sEcReTtOkEn42" not in caplog.text
    config = rows[broken.id]
    assert (config.status, config.last_status, config.attempts) == ("dead", "config", 2)
    assert (
        "ERROR",
        f"delivery {config.delivery_id} (subscription {broken.id}) cannot be sent because of the "
        "bot's configuration, not the reader's: BRIEFING_SOMETHING is not set",
    ) in said
    assert (await subs.get(db, broken.id)).status == "active"


async def test_the_delivery_log_names_the_worker_that_sent(db, ctx, plugins) -> None:
    await states.import_state(db, SEED_STATE, now=utc_now())
    subs_ = [await add(db, f"somewhere/{n}", kind="counting") for n in range(2)]
    first = await queue(db, [subs_[0].id])
    (named,) = await finish(worker(db, ctx, owner="briefing-1"), first)
    assert named.sent_by == "briefing-1"
    default = worker(db, ctx)
    (row,) = await finish(default, await queue(db, [subs_[1].id]))
    assert row.sent_by == default.owner
    assert re.fullmatch(r"[^:]+:\d+:[0-9a-f]{6}", row.sent_by or "")
    assert worker(db, ctx).owner != default.owner  # two processes never share a lease


async def test_a_bug_in_recording_stops_the_worker_instead_of_sending_again(
    db, ctx, plugins, monkeypatch
) -> None:
    """An error in writing outcomes that is not the database being away stops the loop,
    with the error; rows are not sent again every lease, unrecorded, in the meantime."""
    await states.import_state(db, SEED_STATE, now=utc_now())
    created = [await add(db, f"somewhere/{n}", kind="counting") for n in range(3)]
    ids = await queue(db, [s.id for s in created])

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in recording")

    monkeypatch.setattr(outbox, "record", broken)
    # a lease far longer than the loop takes to stop, even on a busy machine
    looping = worker(db, ctx, lease=timedelta(seconds=2), policy=RetryPolicy(attempts=8))
    with pytest.raises(RuntimeError, match="a bug in recording"):
        async with asyncio.timeout(10):
            await looping.run(asyncio.Event(), grace=1)
    assert sys.modules["loop_plugins"].ACTIVE["sent"] == 3
    monkeypatch.undo()
    rows = await outbox.listing(db, ids=ids)
    assert {(r.status, r.attempts) for r in rows} == {("sending", 1)}  # taken up again later
