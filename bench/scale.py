"""Scale of state: ``briefing run`` with 100,000 subscriptions.

    python bench/scale.py [--subscriptions 100000] [--watch 20]

Creates the subscriptions (daily, spread over the day's minutes, none due during the run),
starts ``briefing run``, and prints the time until it says it is running and its peak RSS
while it runs for ``--watch`` seconds. Targets: start < 10 s, RSS < 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.schedule import next_fire  # noqa: E402
from bot.store import states  # noqa: E402
from bot.store.database import Database  # noqa: E402
from bot.store.tables import subscriptions  # noqa: E402

STATE = ROOT / "config" / "state"


async def populate(url: str, count: int) -> None:
    db = await Database.open(url)
    now = datetime.now(UTC)
    await states.import_state(db, STATE, now=now)
    quiet = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    batch = []
    for n in range(count):
        minute = (quiet + timedelta(minutes=n % 600)).astimezone(UTC)
        cron = f"{minute.minute} {minute.hour} * * *"
        batch.append({
            "name": f"sub-{n}", "kind": "email", "address": f"reader{n}@example.org", "secrets": [],
            "topics": None, "locale": "fr" if n % 2 else "en", "timezone": "UTC", "cron": cron,
            "skip_empty": False, "status": "active", "unsubscribe_token": secrets.token_urlsafe(24),
            "next_fire_at": next_fire(cron, "UTC", after=now), "created_at": now, "updated_at": now,
        })  # fmt: skip
        if len(batch) == 5000:
            async with db.engine.begin() as conn:
                await conn.execute(insert(subscriptions), batch)
            batch = []
    if batch:
        async with db.engine.begin() as conn:
            await conn.execute(insert(subscriptions), batch)
    await db.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--watch", type=float, default=20.0)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/scale.db"
        made = time.perf_counter()
        asyncio.run(populate(url, args.subscriptions))
        print(f"created {args.subscriptions} subscriptions in {time.perf_counter() - made:.1f} s")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")}
        env.update(
            BRIEFING_DATABASE_URL=url,
            BRIEFING_STATE_DIR=str(STATE),
            BRIEFING_MAIL_DIR=f"{tmp}/mail",
            BRIEFING_HTTP_PORT="0",
            PYTHONUNBUFFERED="1",
        )
        log = Path(tmp) / "run.log"
        started = time.perf_counter()
        with log.open("wb") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                cwd=ROOT,
                env=env,
                stdout=handle,
                stderr=handle,
            )
        ready = None
        peak = 0.0
        while time.perf_counter() - started < args.watch + 15:
            peak = max(peak, rss_mb(process.pid))
            if ready is None and b"running (worker" in log.read_bytes():
                ready = time.perf_counter() - started
            if ready is not None and time.perf_counter() - started > ready + args.watch:
                break
            if process.poll() is not None:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        if ready is None:
            print(log.read_text()[-3000:])
            raise SystemExit("briefing run did not start")
        print(f"briefing run with {args.subscriptions} subscriptions:")
        print(f"  ready (logged 'running') after {ready:.2f} s  (target < 10 s)")
        print(f"  peak RSS over {args.watch:.0f} s of running: {peak:.0f} MB  (target < 400 MB)")
        print(
            "  "
            + next(line for line in log.read_text().splitlines() if "active subscription" in line)
        )


if __name__ == "__main__":
    main()
