"""``briefing prune``: old finished deliveries leave the log, what the next digest needs stays."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database
from tests.processes import bot_env, invoke


async def queue_old_rows(url: str, sub_id: int) -> list[int]:
    """Three rows from 100 to 200 days ago, skipped by a pause."""
    db = await Database.open(url)
    now = datetime.now(UTC)
    try:
        days = [now - timedelta(days=d) for d in (200, 120, 100)]
        ids = await outbox.insert(db, [outbox.new_row(sub_id, day, now=day) for day in days])
        await subs.set_status(db, sub_id, subs.PAUSED, now=now, reason="testing")
        return ids
    finally:
        await db.close()


async def rows_left(url: str, ids: list[int]) -> list[outbox.Delivery]:
    db = await Database.open(url)
    try:
        return await outbox.listing(db, ids=ids)
    finally:
        await db.close()


def test_prune_deletes_old_finished_rows_and_keeps_the_rest(tmp_path) -> None:
    env = bot_env(tmp_path)
    url = env["BRIEFING_DATABASE_URL"]
    code, out, err = invoke("subscribe", "email", "reader@example.org", "--json", env=env)
    assert code == 0, err
    ids = asyncio.run(queue_old_rows(url, json.loads(out)["id"]))
    code, out, err = invoke("prune", "--older-than", "150d", "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["deleted"] == 1 and len(asyncio.run(rows_left(url, ids))) == 2
    code, out, err = invoke("prune", "--older-than", "90d", env=env)
    assert code == 0 and "deleted 2 finished deliveries" in out
    assert asyncio.run(rows_left(url, ids)) == []
    code, out, err = invoke("prune", "--older-than", "soon", env=env)
    assert code == 2 and "--older-than" in err and "Traceback" not in err
