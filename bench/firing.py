"""Firing benchmark: N subscriptions all due at the same minute, ``briefing run`` already up.

    python bench/firing.py [--subs 1000,10000,100000] [--instances 3] [--kill]
                           [--database-url URL] [--concurrency 64] [--delay 0.05]

``--subs`` takes a comma-separated list to see how the cost grows. For each size: N
generic-webhook subscriptions due at the next whole minute point at one local receiver that
answers after ``--delay``; ``--instances`` ``briefing run`` processes are started before that
minute (on SQLite by default, or ``--database-url`` for PostgreSQL). With ``--kill`` the
first instance is SIGKILLed once a third of the deliveries have arrived, and the others
finish its work (its rows come back when their 30-second lease runs out).

Prints, for each size: the seconds from the due minute to the last delivery the receiver
answered, deliveries per second, a bare aiohttp loop's time for the same fan-out (same
receiver, same concurrency) and the ratio of the two; the bot's CPU time and SQL statements
per delivery (each instance logs its database use when it stops; a killed one cannot, so
those figures cover the survivors and what they delivered); each instance's peak RSS and
database connections (opened, and most in use at once; the pool allows at most
pool_size + max_overflow); the most connections the database saw from the instances at once;
how many deliveries reached the receiver twice (only rows an instance held when it died may);
and the outbox's check: every subscription has exactly one delivered row. Targets: within
1.3× the bare time, cost per delivery flat from 1,000 to 100,000, peak RSS ≤ 300 MB.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fanout import (  # noqa: E402
    bare_http,
    database_use,
    free_port,
    make_subscribers,
    one_message,
    reset,
    wait_port,
)

from bot.outputs import make_context, output_class  # noqa: E402
from bot.outputs.webhooks import encoded  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store.database import MAX_OVERFLOW, POOL_SIZE, Database  # noqa: E402
from bot.store.tables import deliveries, subscriptions  # noqa: E402


async def make_due(url: str, *, count: int, address: str, lead: float) -> datetime:
    """``count`` subscriptions whose next firing is the first whole minute at least ``lead``
    seconds after they are made; return that minute."""
    await make_subscribers(url, count=count, kind="generic", address=address)
    due = next_minute(lead=lead)
    db = await Database.open(url)
    async with db.engine.begin() as conn:
        await conn.execute(
            subscriptions.update().values(
                cron=f"{due.minute} {due.hour} * * *", timezone="UTC", next_fire_at=due
            )
        )
    await db.close()
    return due


async def outbox_check(url: str) -> tuple[int, int, int, int, dict[str, int]]:
    """(rows, delivered rows, subscriptions with exactly one delivered row, rows tried more
    than once, delivered rows by the worker that sent them)."""
    db = await Database.open(url)
    per_sub = (
        select(deliveries.c.subscription_id)
        .where(deliveries.c.status == "delivered")
        .group_by(deliveries.c.subscription_id)
        .having(func.count() == 1)
        .subquery()
    )
    async with db.engine.connect() as conn:
        rows = await conn.scalar(select(func.count()).select_from(deliveries))
        delivered = await conn.scalar(
            select(func.count()).where(deliveries.c.status == "delivered")
        )
        once = await conn.scalar(select(func.count()).select_from(per_sub))
        retried = await conn.scalar(select(func.count()).where(deliveries.c.attempts > 1))
        senders = await conn.execute(
            select(deliveries.c.sent_by, func.count())
            .where(deliveries.c.status == "delivered")
            .group_by(deliveries.c.sent_by)
        )
        by_sender = {str(sender): int(n) for sender, n in senders.all()}
    await db.close()
    return int(rows or 0), int(delivered or 0), int(once or 0), int(retried or 0), by_sender


async def connections_now(db: Database) -> int:
    """Connections to the benchmark's PostgreSQL database, but the asking one."""
    async with db.engine.connect() as conn:
        found = await conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(found.scalar() or 0)


async def fetch(port: int, path: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return await response.text()


def proc_status(pid: int, key: str) -> float:
    """A ``/proc/PID/status`` figure in MB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a running process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def next_minute(*, lead: float) -> datetime:
    """The first whole minute at least ``lead`` seconds away."""
    moment = datetime.now(UTC) + timedelta(seconds=lead)
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


@dataclass
class Instance:
    process: subprocess.Popen[bytes]
    log: Path
    statements_file: Path
    peak_mb: float = 0.0
    cpu: float = 0.0
    killed: bool = False
    delivered: int = 0
    use: str = field(default="(not logged)")
    cpu_at_due: float = 0.0
    statements_at_due: int = 0

    def sample(self) -> None:
        if not self.killed:
            self.peak_mb = max(self.peak_mb, proc_status(self.process.pid, "VmHWM"))
            self.cpu = max(self.cpu, cpu_seconds(self.process.pid))

    def statements(self) -> int:
        try:
            return int(self.statements_file.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def at_due(self) -> None:
        """Leave start-up out of the cost: what was spent until the due minute."""
        self.sample()
        self.cpu_at_due, self.statements_at_due = self.cpu, self.statements()


def start(n: int, count: int, env: dict[str, str], tmp: str) -> Instance:
    log = Path(tmp) / f"run-{count}-{n}.log"
    counter = Path(tmp) / f"statements-{count}-{n}"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "counted.py"), "run"],
            cwd=ROOT,
            env={**env, "BENCH_STATEMENTS_FILE": str(counter)},
            stdout=handle,
            stderr=handle,
        )
    return Instance(process, log, counter)


async def watch(
    instances: list[Instance], *, port: int, url: str, count: int, due: datetime, kill: bool
) -> int:
    """Sample the instances five times a second until every delivery has arrived (SIGKILL
    the first a third of the way through if ``kill``); return the most connections the
    database had from them at once (sampled every second; 0 on SQLite)."""
    deadline = due.timestamp() + 600 + count / 100
    most, arrived, turn = 0, 0, 0
    db = await Database.open(url, migrate=False)
    try:
        async with aiohttp.ClientSession() as session:
            while arrived < count:
                if time.time() > deadline or any(
                    i.process.poll() is not None for i in instances if not i.killed
                ):
                    for instance in instances:
                        print(instance.log.read_text()[-2000:], file=sys.stderr)
                    raise SystemExit("the deliveries did not all arrive")
                for instance in instances:
                    instance.sample()
                if kill and not instances[0].killed and arrived >= count // 3:
                    instances[0].process.kill()
                    instances[0].process.wait()
                    instances[0].killed = True
                    print(f"  SIGKILLed instance 0 after {arrived} deliveries")
                if turn % 5 == 0 and not db.is_sqlite:
                    most = max(most, await connections_now(db))
                turn += 1
                await asyncio.sleep(0.2)
                async with session.get(f"http://127.0.0.1:{port}/count") as response:
                    arrived = int(await response.text())
    finally:
        await db.close()
    return most


def one_size(count: int, args: argparse.Namespace, tmp: str) -> None:
    url = args.database_url or f"sqlite:///{tmp}/firing-{count}.db"
    if args.database_url:
        asyncio.run(reset(url))
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "receiver.py"), str(port), str(args.delay)]
    )
    instances: list[Instance] = []
    try:
        asyncio.run(wait_port(port))
        made = time.perf_counter()
        address = f"http://127.0.0.1:{port}/hook/{{n}}"
        due = asyncio.run(make_due(url, count=count, address=address, lead=20))
        print(
            f"{count} subscriptions due at {due:%H:%M} UTC (made in "
            f"{time.perf_counter() - made:.1f} s); load average {load()}"
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")},
            "BRIEFING_DATABASE_URL": url, "BRIEFING_STATE_DIR": str(ROOT / "config" / "state"),
            "BRIEFING_ALLOW_PRIVATE_TARGETS": "true", "BRIEFING_CONCURRENCY": str(args.concurrency),
            "BRIEFING_MAIL_FROM": "Briefing <briefing@example.org>", "BRIEFING_HTTP_PORT": "0",
            "BRIEFING_HOME": str(Path(tmp) / "home"), "PYTHONUNBUFFERED": "1",
        }  # fmt: skip
        instances = [start(n, count, env, tmp) for n in range(args.instances)]
        while time.time() < due.timestamp():
            if any(i.process.poll() is not None for i in instances):
                for instance in instances:
                    print(instance.log.read_text()[-2000:], file=sys.stderr)
                raise SystemExit("an instance stopped before the due minute")
            time.sleep(0.05)
        for instance in instances:
            instance.at_due()
        most_connections = asyncio.run(
            watch(instances, port=port, url=url, count=count, due=due, kill=args.kill)
        )
        for instance in instances:
            instance.sample()
        last = float(asyncio.run(fetch(port, "/last")))
        time.sleep(1.0)  # let the last outcomes be recorded (they are flushed every 50 ms)
        for instance in instances:
            if not instance.killed:
                instance.process.send_signal(signal.SIGTERM)
        for instance in instances:
            instance.process.wait(timeout=60)
            instance.use = database_use(instance.log.read_text())
        repeats = int(asyncio.run(fetch(port, "/repeats")))
        rows, delivered, once, retried, by_sender = asyncio.run(outbox_check(url))
        seconds = last - due.timestamp()
        settings = Settings(_env_file=None, mail_from="Briefing <briefing@example.org>")  # type: ignore[call-arg]
        webhook = output_class("generic")(make_context(settings))
        body = encoded(webhook.payloads(one_message("generic", settings))[0])  # type: ignore[attr-defined]
        bare = asyncio.run(bare_http(port, body, count=count, concurrency=args.concurrency))
    finally:
        for instance in instances:
            if instance.process.poll() is None:
                instance.process.kill()
        receiver.terminate()
        receiver.wait()
    for instance in instances:
        instance.delivered = sum(
            n for sender, n in by_sender.items() if f":{instance.process.pid}:" in sender
        )
    cpu = sum(i.cpu - i.cpu_at_due for i in instances)
    executed = sum(i.statements() - i.statements_at_due for i in instances)
    kind = "PostgreSQL" if args.database_url else "SQLite"
    killed = ", one SIGKILLed" if args.kill else ""
    print(f"  briefing run ×{args.instances} on {kind}{killed}: {seconds:7.2f} s from the due "
          f"minute to the last delivery  {count / seconds:8.1f}/s")  # fmt: skip
    print(f"  bare aiohttp loop:   {bare:7.2f} s  {count / bare:8.1f}/s")
    print(f"  bot / bare time: {seconds / bare:.2f}  (target ≤ 1.30)")
    print(
        f"  from the due minute on, all instances: CPU {cpu:.1f} s = {cpu / count * 1000:.3f} ms "
        f"per delivery; {executed} SQL statements = {executed / count:.3f} per delivery"
    )
    for n, instance in enumerate(instances):
        status = "SIGKILLed" if instance.killed else f"database use: {instance.use}"
        print(
            f"  instance {n}: delivered {instance.delivered}, peak RSS {instance.peak_mb:.0f} MB, "
            f"CPU {instance.cpu:.1f} s ({instance.cpu_at_due:.1f} s of it before the due minute); "
            f"{status}"
        )
    if args.database_url:
        print(
            f"  most connections to the database at once: {most_connections} "
            f"(each instance's pool: at most {POOL_SIZE} + {MAX_OVERFLOW} overflow)"
        )
    print(
        f"  outbox: {rows} rows, {delivered} delivered, {once} subscriptions with exactly one "
        f"delivered row, {retried} rows tried more than once"
    )
    print(f"  receiver: {repeats} deliveries received twice (same webhook-id)")
    print(f"  load average after: {load()}")
    if delivered != count or once != count or repeats > retried:
        raise SystemExit("FAILED: not every subscription was delivered exactly once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subs", default="10000", help="comma-separated sizes")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--kill", action="store_true", help="SIGKILL one instance a third in")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05, help="receiver delay in seconds")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    if args.kill and args.instances < 2:
        parser.error("--kill needs --instances 2 or more")
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(n) for n in args.subs.split(",")):
            one_size(count, args, tmp)


if __name__ == "__main__":
    main()
