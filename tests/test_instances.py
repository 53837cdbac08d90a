"""Several ``briefing run`` processes on one PostgreSQL: shared work, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import collections
import secrets
import signal
from datetime import UTC, datetime

import pytest

from bot.outputs.webhooks import new_secret
from bot.store import outbox
from bot.store.database import Database
from bot.store.tables import subscriptions
from bot.worker.worker import BATCH
from tests.dbs import postgres_database
from tests.pgcluster import PrivateCluster
from tests.processes import bot_env, delivered_count, start, wait_for
from tests.receivers import HttpReceiver, hang

pytestmark = pytest.mark.slow

SUBSCRIBERS = 1000
CONCURRENCY = 16


async def subscribe_many(db: Database, address: str, *, count: int, due: datetime) -> None:
    """``count`` webhook subscriptions due at ``due``, inserted in a few statements."""
    rows = [
        {
            "name": f"r{n}", "kind": "generic", "address": address, "secrets": [new_secret()],
            "topics": None, "locale": "en", "timezone": "UTC", "cron": "0 7 * * *",
            "skip_empty": False, "status": "active", "unsubscribe_token": secrets.token_urlsafe(24),
            "next_fire_at": due, "created_at": due, "updated_at": due,
        }
        for n in range(count)
    ]  # fmt: skip
    async with db.engine.begin() as conn:
        for start_at in range(0, count, 1000):
            await conn.execute(subscriptions.insert(), rows[start_at : start_at + 1000])


async def fan_out(
    tmp_path, url: str, *, instances: int, during=None, count: int = SUBSCRIBERS
) -> tuple[list[outbox.Delivery], collections.Counter]:
    """Start ``instances`` bots on ``url`` with ``count`` subscribers due now; run ``during``
    meanwhile; wait until every subscriber has its delivery; stop them; return rows and
    receiver counts."""
    receiver = HttpReceiver()
    await receiver.start()
    hook = receiver.on("/fan", hang(0.02))
    db = await Database.open(url)
    processes = []
    try:
        await subscribe_many(db, hook, count=count, due=datetime.now(UTC).replace(microsecond=0))
        env = bot_env(tmp_path, url, BRIEFING_CONCURRENCY=str(CONCURRENCY))
        processes = [
            await start("run", env=env, log=tmp_path / f"run{n}.log") for n in range(instances)
        ]
        if during is not None:
            await during(processes, receiver)
        async with asyncio.timeout(150):
            while True:
                try:
                    if await delivered_count(db) >= count:
                        break
                except Exception:  # the database may be the thing that is down
                    pass
                await asyncio.sleep(0.5)
        rows = await outbox.listing(db, limit=10 * count)
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            await process.wait()
        await db.close()
        await receiver.stop()
    return rows, collections.Counter(h.headers["webhook-id"] for h in receiver.hits("/fan"))


def check_exactly_one_delivered_each(rows: list[outbox.Delivery], count: int = SUBSCRIBERS) -> None:
    per_sub = collections.Counter(r.subscription_id for r in rows)
    assert len(rows) == count and set(per_sub.values()) == {1}
    assert {r.status for r in rows} == {"delivered"}


async def test_three_instances_deliver_each_exactly_once(tmp_path) -> None:
    async with postgres_database() as url:
        rows, seen = await fan_out(tmp_path, url, instances=3)
    check_exactly_one_delivered_each(rows)
    assert set(seen) == {r.delivery_id for r in rows} and set(seen.values()) == {1}
    logs = [(tmp_path / f"run{n}.log").read_text() for n in range(3)]
    assert all("running (worker" in log for log in logs)
    # the work was shared: every instance sent some of it
    assert len({r.sent_by for r in rows}) == 3 and None not in {r.sent_by for r in rows}


async def test_killing_one_instance_mid_fan_out_the_others_finish(tmp_path) -> None:
    async def kill_one(processes, receiver) -> None:
        await wait_for(lambda: len(receiver.hits("/fan")) >= 200, timeout=60)
        processes[0].kill()
        await processes[0].wait()

    async with postgres_database() as url:
        rows, seen = await fan_out(tmp_path, url, instances=3, during=kill_one)
    check_exactly_one_delivered_each(rows)
    assert set(seen) == {r.delivery_id for r in rows}
    repeated = {key for key, n in seen.items() if n > 1}
    assert repeated <= {r.delivery_id for r in rows if r.attempts > 1} and max(seen.values()) <= 2


async def test_5000_due_at_once_one_of_three_killed_a_third_in(tmp_path) -> None:
    count = 5000
    killed = []

    async def kill_one(processes, receiver) -> None:
        await wait_for(lambda: len(receiver.hits("/fan")) >= count // 3, timeout=90)
        processes[0].kill()
        await processes[0].wait()
        killed.append(processes[0].pid)

    async with postgres_database() as url:
        rows, seen = await fan_out(tmp_path, url, instances=3, during=kill_one, count=count)
    check_exactly_one_delivered_each(rows, count)
    assert set(seen) == {r.delivery_id for r in rows}
    # the rows the killed instance held were taken over and finished by the others; they are
    # the only ones tried twice
    taken_over = [r for r in rows if r.attempts > 1]
    # what the killed instance held: claimed rows (at most 4 × concurrency) and outcomes
    # sent but not yet written (at most one batch)
    assert 0 < len(taken_over) <= 4 * CONCURRENCY + BATCH
    assert not any(f":{killed[0]}:" in (r.sent_by or "") for r in taken_over)
    # a repeat at the receiver only for those, at most once more
    repeated = {key for key, n in seen.items() if n > 1}
    assert repeated <= {r.delivery_id for r in taken_over} and max(seen.values()) <= 2
    # the survivors did the rest of the work, both of them
    survivors = {r.sent_by for r in rows} - {
        r.sent_by for r in rows if f":{killed[0]}:" in (r.sent_by or "")
    }
    assert len(survivors) == 2


@pytest.fixture
def cluster():
    server = PrivateCluster()
    server.start()
    yield server
    server.remove()


async def test_postgres_stopped_for_30_seconds_mid_run(tmp_path, cluster) -> None:
    async def outage(processes, receiver) -> None:
        await wait_for(lambda: len(receiver.hits("/fan")) >= 150, timeout=60)
        cluster.stop("immediate")
        await asyncio.sleep(30)
        cluster.start()

    rows, seen = await fan_out(tmp_path, cluster.url, instances=2, during=outage)
    check_exactly_one_delivered_each(rows)
    assert set(seen) == {r.delivery_id for r in rows}
    logs = "".join((tmp_path / f"run{n}.log").read_text() for n in range(2))
    assert "cannot claim deliveries" in logs or "cannot record deliveries" in logs
