"""The outbox's size after days of daily digests, before and after ``briefing prune``.

    python bench/outbox_size.py [--subscribers 10000] [--days 7] [--older-than 90d]
                                [--database-url URL]

Writes what ``--days`` days of daily digests to ``--subscribers`` webhook subscribers leave
in the outbox (one delivered row each a day, the last one today, written as the worker
records them), then runs ``briefing prune --older-than AGE`` and ``VACUUM``, printing the
rows and the table's size (with its indexes) at each step. With ``--older-than 90d`` a week's
rows are all kept; ``--older-than 1d`` shows what pruning leaves (each subscription's latest
delivered row). On SQLite, the size is the database file's pages in use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fanout import make_subscribers, reset  # noqa: E402

from bot.delivery import Status, Trigger  # noqa: E402
from bot.store import outbox  # noqa: E402
from bot.store.database import Database  # noqa: E402
from bot.store.tables import deliveries, subscriptions  # noqa: E402

ANSWER = "200 ok"


async def simulate(url: str, *, days: int, last: int = 0) -> float:
    """``days`` days of delivered daily digests for every subscription, the last one
    ``last`` days after today; return seconds."""
    started = time.perf_counter()
    db = await Database.open(url)
    async with db.engine.connect() as conn:
        ids = list((await conn.execute(select(subscriptions.c.id))).scalars())
    today = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0)
    for day in range(days - 1, -1, -1):
        period = today - timedelta(days=day - last)
        rows = []
        for sub_id in ids:
            row = outbox.new_row(sub_id, period, now=period, trigger=Trigger.SCHEDULED)
            row.update(
                status=Status.DELIVERED, attempts=1, next_attempt_at=None, parts=1,
                window_start=period - timedelta(days=1), window_end=period,
                state_revision="r" + "0" * 15, last_status="200", last_answer=ANSWER,
                delivered_at=period + timedelta(seconds=9), sent_by="bench:1:abcdef",
                updated_at=period + timedelta(seconds=9),
            )  # fmt: skip
            rows.append(row)
        for start in range(0, len(rows), 5000):
            await outbox.insert(db, rows[start : start + 5000])
    await db.close()
    return time.perf_counter() - started


async def measure(url: str, *, vacuum: bool = False) -> tuple[int, float]:
    """(rows in the outbox, its size in MB with indexes), after VACUUM if asked."""
    db = await Database.open(url)
    try:
        if vacuum:
            async with db.engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.exec_driver_sql("VACUUM" if db.is_sqlite else "VACUUM deliveries")
        async with db.engine.connect() as conn:
            rows = int(await conn.scalar(select(func.count()).select_from(deliveries)) or 0)
            if db.is_sqlite:
                pages = await conn.exec_driver_sql("PRAGMA page_count")
                free = await conn.exec_driver_sql("PRAGMA freelist_count")
                size = await conn.exec_driver_sql("PRAGMA page_size")
                used = (int(pages.scalar() or 0) - int(free.scalar() or 0)) * int(
                    size.scalar() or 0
                )
            else:
                found = await conn.exec_driver_sql("SELECT pg_total_relation_size('deliveries')")
                used = int(found.scalar() or 0)
    finally:
        await db.close()
    return rows, used / 1024 / 1024


def prune(url: str, older_than: str, home: str) -> dict[str, object]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")},
        "BRIEFING_DATABASE_URL": url,
        "BRIEFING_HOME": home,
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "prune", "--older-than", older_than, "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"briefing prune failed: {result.stderr.strip()}")
    found: dict[str, object] = json.loads(result.stdout)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--older-than", default="90d")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/outbox.db"
        if args.database_url:
            asyncio.run(reset(url))
        address = "https://hooks.example.org/reader/{n}"
        asyncio.run(make_subscribers(url, count=args.subscribers, kind="generic", address=address))
        seconds = asyncio.run(simulate(url, days=args.days))
        kind = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
        print(
            f"{args.days} days of daily digests for {args.subscribers} subscribers on {kind} "
            f"(written in {seconds:.1f} s)"
        )
        rows, size = asyncio.run(measure(url))
        per_row = size * 1024 * 1024 / max(rows, 1)
        print(f"  before pruning:            {rows:9d} rows  {size:8.1f} MB")
        outcome = prune(url, args.older_than, str(Path(tmp) / "home"))
        print(f"  briefing prune --older-than {args.older_than}: deleted {outcome['deleted']}")
        rows, size = asyncio.run(measure(url))
        print(f"  after pruning:             {rows:9d} rows  {size:8.1f} MB")
        rows, vacuumed = asyncio.run(measure(url, vacuum=True))
        print(f"  after VACUUM:              {rows:9d} rows  {vacuumed:8.1f} MB")
        asyncio.run(simulate(url, days=1, last=1))
        rows, size = asyncio.run(measure(url))
        print(
            f"  one more day's digests:    {rows:9d} rows  {size:8.1f} MB  "
            f"(+{size - vacuumed:.1f} MB: pruned space is reused)"
        )
        print(
            f"  about {per_row:.0f} bytes a row with its indexes; kept 90 days, a daily digest "
            f"to {args.subscribers} subscribers is about "
            f"{per_row * 90 * args.subscribers / 1024 / 1024:.0f} MB"
        )


if __name__ == "__main__":
    main()
