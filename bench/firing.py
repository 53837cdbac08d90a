"""Firing benchmark: N subscriptions all due at the same minute, ``briefing run`` already up.

    python bench/firing.py [--subs 10000] [--instances 1] [--database-url URL]
                           [--concurrency 64] [--delay 0.05]

``--subs`` takes a comma-separated list (1000,10000,100000) to see how the cost grows. For
each size: N generic-webhook subscriptions due at the next whole minute point at one local
receiver that answers after ``--delay``; ``--instances`` ``briefing run`` processes are
started before that minute (on SQLite by default, or ``--database-url`` for PostgreSQL).
Prints the seconds from the due minute to the last delivery the receiver answered, the
deliveries per second, a bare aiohttp loop's time for the same fan-out (same receiver,
same concurrency), their ratio, and each instance's peak RSS. Target: within 1.3× the bare
time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fanout import (  # noqa: E402
    bare_http,
    free_port,
    make_subscribers,
    one_message,
    reset,
    wait_port,
)

from bot.outputs import make_context, output_class  # noqa: E402
from bot.outputs.webhooks import encoded  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store.database import Database  # noqa: E402
from bot.store.tables import subscriptions  # noqa: E402


async def make_due(url: str, *, count: int, address: str, due: datetime) -> None:
    """``count`` subscriptions whose next firing is ``due``."""
    await make_subscribers(url, count=count, kind="generic", address=address)
    db = await Database.open(url)
    async with db.engine.begin() as conn:
        await conn.execute(
            subscriptions.update().values(
                cron=f"{due.minute} {due.hour} * * *", timezone="UTC", next_fire_at=due
            )
        )
    await db.close()


async def fetch(port: int, path: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return await response.text()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def next_minute(*, lead: float) -> datetime:
    """The first whole minute at least ``lead`` seconds away."""
    moment = datetime.now(UTC) + timedelta(seconds=lead)
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def one_size(count: int, args: argparse.Namespace, tmp: str) -> None:
    url = args.database_url or f"sqlite:///{tmp}/firing-{count}.db"
    if args.database_url:
        asyncio.run(reset(url))
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "receiver.py"), str(port), str(args.delay)]
    )
    bots: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(wait_port(port))
        due = next_minute(lead=15 + count / 10_000)
        made = time.perf_counter()
        asyncio.run(
            make_due(url, count=count, address=f"http://127.0.0.1:{port}/hook/{{n}}", due=due)
        )
        print(
            f"{count} subscriptions due at {due:%H:%M} UTC (made in {time.perf_counter() - made:.1f} s)"
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")},
            "BRIEFING_DATABASE_URL": url, "BRIEFING_STATE_DIR": str(ROOT / "config" / "state"),
            "BRIEFING_ALLOW_PRIVATE_TARGETS": "true", "BRIEFING_CONCURRENCY": str(args.concurrency),
            "BRIEFING_MAIL_FROM": "Briefing <briefing@example.org>", "BRIEFING_HTTP_PORT": "0",
            "PYTHONUNBUFFERED": "1",
        }  # fmt: skip
        logs = []
        for n in range(args.instances):
            log = Path(tmp) / f"run-{count}-{n}.log"
            logs.append(log)
            with log.open("wb") as handle:
                bots.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bot", "run"],
                        cwd=ROOT,
                        env=env,
                        stdout=handle,
                        stderr=handle,
                    )
                )
        peaks = [0.0] * len(bots)
        deadline = due.timestamp() + 600
        while int(asyncio.run(fetch(port, "/count"))) < count:
            if time.time() > deadline or any(b.poll() is not None for b in bots):
                for log in logs:
                    print(log.read_text()[-2000:], file=sys.stderr)
                raise SystemExit("the deliveries did not all arrive")
            peaks = [max(p, peak_rss_mb(b.pid)) for p, b in zip(peaks, bots, strict=True)]
            time.sleep(0.2)
        peaks = [max(p, peak_rss_mb(b.pid)) for p, b in zip(peaks, bots, strict=True)]
        last = float(asyncio.run(fetch(port, "/last")))
        for bot in bots:
            bot.send_signal(signal.SIGTERM)
        for bot in bots:
            bot.wait(timeout=60)
        bots = []
        seconds = last - due.timestamp()
        settings = Settings(_env_file=None, mail_from="Briefing <briefing@example.org>")  # type: ignore[call-arg]
        webhook = output_class("generic")(make_context(settings))
        body = encoded(webhook.payloads(one_message("generic", settings))[0])  # type: ignore[attr-defined]
        bare = asyncio.run(bare_http(port, body, count=count, concurrency=args.concurrency))
    finally:
        for bot in bots:
            bot.kill()
        receiver.terminate()
        receiver.wait()
    print(f"  briefing run ×{args.instances}: {seconds:7.2f} s from the due minute to the last "
          f"delivery  {count / seconds:8.1f}/s")  # fmt: skip
    print(f"  bare aiohttp loop:   {bare:7.2f} s  {count / bare:8.1f}/s")
    print(f"  bot / bare time: {seconds / bare:.2f}  (target ≤ 1.30)")
    print("  peak RSS per instance: " + ", ".join(f"{p:.0f} MB" for p in peaks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subs", default="10000", help="comma-separated sizes")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05, help="receiver delay in seconds")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(n) for n in args.subs.split(",")):
            one_size(count, args, tmp)


if __name__ == "__main__":
    main()
