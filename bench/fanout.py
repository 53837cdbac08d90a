"""Fan-out benchmark: the bot's ``briefing send --all`` against a bare loop, same receiver.

    python bench/fanout.py [--subscribers 10000] [--concurrency 64] [--delay 0.05]
    python bench/fanout.py --email [--subscribers 1000]

Webhooks: N generic-webhook subscriptions point at one local receiver that answers after
``--delay``; the bot sends to all of them (``briefing send --all``: start-up, queueing,
rendering, signing, sending and bookkeeping included), then a bare aiohttp loop posts the
same payload N times with the same concurrency. Email: N email subscriptions, a local
aiosmtpd sink, and a bare aiosmtplib loop reusing one connection. Prints both rates, their
ratio and the bot's peak RSS. Targets: ratio ≥ 0.8, peak RSS ≤ 300 MB. With --apprise N, also
times Apprise notifying N json:// targets on the same receiver (it sends the text form).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import aiosmtplib
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.delivery import render_message  # noqa: E402
from bot.digest import DigestRenderer, ReaderOptions, Window, compose  # noqa: E402
from bot.outputs import Envelope, Target, make_context, output_class  # noqa: E402
from bot.outputs.webhooks import encoded, new_secret  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.state import load_state  # noqa: E402
from bot.store import states  # noqa: E402
from bot.store.database import Database  # noqa: E402
from bot.store.tables import subscriptions  # noqa: E402

STATE = ROOT / "config" / "state"
NOW = datetime(2025, 12, 2, 18, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_port(port: int) -> None:
    for _ in range(600):  # a busy machine may take a while to start a receiver
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


async def reset(url: str) -> None:
    """Empty the tables of a database given with --database-url, so runs start alike."""
    db = await Database.open(url)
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            for table in ("deliveries", "subscriptions", "state_revisions"):
                await conn.exec_driver_sql(f"DELETE FROM {table}")
        else:
            await conn.exec_driver_sql("TRUNCATE deliveries, subscriptions, state_revisions")
    await db.close()


async def make_subscribers(url: str, *, count: int, kind: str, address: str) -> None:
    db = await Database.open(url)
    now = datetime.now(UTC)
    await states.import_state(db, STATE, now=now)
    rows = [
        {
            "name": f"bench-{n}", "kind": kind, "address": address.format(n=n),
            "secrets": [new_secret()] if kind == "generic" else [], "topics": None, "locale": "en",
            "timezone": "Europe/Paris", "cron": "0 7 * * *", "skip_empty": False, "status": "active",
            "unsubscribe_token": secrets.token_urlsafe(24), "next_fire_at": None,
            "created_at": now, "updated_at": now,
        }
        for n in range(count)
    ]  # fmt: skip
    async with db.engine.begin() as conn:
        for start in range(0, count, 2000):
            await conn.execute(insert(subscriptions), rows[start : start + 2000])
    await db.close()


def run_bot(
    env: dict[str, str], *, profile: str | None = None
) -> tuple[float, float, float, str, str]:
    """Run ``briefing send --all`` (under py-spy, writing collapsed stacks to ``profile``, if
    given); return (seconds, CPU seconds, peak RSS in MB, last output line, the database's
    use as the bot logged it)."""
    command = [sys.executable, str(ROOT / "bench" / "counted.py"), "send", "--all"]
    if profile:
        spy = Path(sys.executable).with_name("py-spy")
        if not spy.exists():
            raise SystemExit(f"--profile needs py-spy next to {sys.executable}: pip install py-spy")
        command = [str(spy), "record", "-r", "200", "-f", "raw", "-o", profile, "--", *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    peak = after.ru_maxrss / 1024
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"briefing send --all failed ({result.returncode})")
    lines = [line for line in result.stdout.strip().splitlines() if "py-spy" not in line]
    return elapsed, cpu, peak, lines[-1], database_use(result.stderr)


def database_use(log: str) -> str:
    """The figures of the last ``database use:`` line of a bot's log."""
    found = [
        line.split("database use: ", 1)[1] for line in log.splitlines() if "database use: " in line
    ]
    return found[-1].strip() if found else "(not logged)"


def statements(use: str) -> int:
    """The number of SQL statements in a ``database use`` line (0 if not logged)."""
    first = use.split(" ", 1)[0]
    return int(first) if first.isdigit() else 0


def one_message(kind: str, settings: Settings):
    state = load_state(STATE)
    digest = compose(state, ReaderOptions(timezone="Europe/Paris"), Window.ending(NOW))
    return render_message(DigestRenderer(), digest, output_class(kind))


async def bare_http(port: int, body: bytes, *, count: int, concurrency: int) -> float:
    """POST ``body`` ``count`` times with ``concurrency`` requests in flight (as many workers
    taking the next number in turn); return the seconds. A request that fails to connect or
    is cut off is tried again, up to three times, as any client would."""
    numbers = iter(range(count))
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=300)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post(n: int) -> None:
            for attempt in range(3):
                try:
                    async with session.post(
                        f"http://127.0.0.1:{port}/bare/{n}", data=body,
                        headers={"content-type": "application/json"},
                    ) as response:  # fmt: skip
                        await response.read()
                        if response.status != 200:
                            raise SystemExit(f"bare loop got {response.status}")
                        return
                except aiohttp.ClientError as exc:
                    if attempt == 2:
                        raise SystemExit(f"bare loop: {exc!r}") from exc

        async def worker() -> None:
            for n in numbers:
                await post(n)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def bare_smtp(port: int, data: bytes, *, count: int) -> float:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await smtp.connect()
    started = time.perf_counter()
    for n in range(count):
        await smtp.sendmail("briefing@example.org", [f"reader{n}@example.org"], data)
    elapsed = time.perf_counter() - started
    await smtp.quit()
    return elapsed


def apprise_loop(port: int, message: object, *, count: int) -> float:
    """Apprise notifying ``count`` json:// targets on the receiver with the text digest."""
    import apprise

    notifier = apprise.Apprise()
    for n in range(count):
        notifier.add(f"json://127.0.0.1:{port}/apprise/{n}")
    body = message.body("text")  # type: ignore[attr-defined]
    started = time.perf_counter()
    if not notifier.notify(body=body, title="Briefing"):
        raise SystemExit("Apprise reported a failure")
    return time.perf_counter() - started


async def received(port: int) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/count") as r,
    ):
        return int(await r.text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05, help="receiver delay (webhooks)")
    parser.add_argument("--email", action="store_true", help="email through an SMTP sink")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument(
        "--profile", metavar="FILE", help="run the bot under py-spy, collapsed stacks to FILE"
    )
    parser.add_argument(
        "--apprise", type=int, default=0, metavar="N",
        help="also time Apprise notifying N json:// targets on the same receiver",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"load average before the run: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    count = args.subscribers or (1000 if args.email else 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        if args.database_url:
            asyncio.run(reset(url))
        port = free_port()
        if args.email:
            server = subprocess.Popen(
                [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c",
                 "aiosmtpd.handlers.Sink"], cwd=tmp,
            )  # fmt: skip
        else:
            server = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "bench" / "receiver.py"),
                    str(port),
                    str(args.delay),
                ]
            )
        try:
            asyncio.run(wait_port(port))
            kind = "email" if args.email else "generic"
            address = (
                "reader{n}@example.org" if args.email else f"http://127.0.0.1:{port}/hook/{{n}}"
            )
            asyncio.run(make_subscribers(url, count=count, kind=kind, address=address))
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")},
                "BRIEFING_DATABASE_URL": url, "BRIEFING_STATE_DIR": str(STATE),
                "BRIEFING_ALLOW_PRIVATE_TARGETS": "true", "BRIEFING_CONCURRENCY": str(args.concurrency),
                "BRIEFING_MAIL_FROM": "Briefing <briefing@example.org>",
            }  # fmt: skip
            if args.email:
                env.update(
                    BRIEFING_SMTP_HOST="127.0.0.1",
                    BRIEFING_SMTP_PORT=str(port),
                    BRIEFING_SMTP_SECURITY="none",
                )
            bot_seconds, bot_cpu, peak_mb, summary, use = run_bot(env, profile=args.profile)
            settings = Settings(_env_file=None, mail_from="Briefing <briefing@example.org>")  # type: ignore[call-arg]
            message = one_message(kind, settings)
            if args.email:
                output = output_class("email")(make_context(settings))
                data = output.to_bytes(
                    Target("email", "reader@example.org"),
                    message,  # type: ignore[attr-defined]
                    envelope=Envelope("dlv_bench"),
                )
                bare_seconds = asyncio.run(bare_smtp(port, data, count=count))
                delivered = count
            else:
                webhook = output_class("generic")(make_context(settings))
                body = encoded(webhook.payloads(message)[0])  # type: ignore[attr-defined]
                delivered = asyncio.run(received(port))
                bare_started = time.process_time()
                bare_seconds = asyncio.run(
                    bare_http(port, body, count=count, concurrency=args.concurrency)
                )
                bare_cpu = time.process_time() - bare_started
                if args.apprise:
                    apprise_seconds = apprise_loop(port, message, count=args.apprise)
        finally:
            server.terminate()
            server.wait()
    bot_rate, bare_rate = count / bot_seconds, count / bare_seconds
    what = (
        "email (SMTP sink, one connection)"
        if args.email
        else f"webhooks (receiver delay {args.delay * 1000:.0f} ms)"
    )
    print(f"fan-out of {count} {what}, concurrency {args.concurrency}")
    print(
        f"  bot  (briefing send --all, end to end): {bot_seconds:7.2f} s  {bot_rate:8.1f}/s  [{summary}]"
    )
    print(f"  bot CPU time: {bot_cpu:.2f} s ({bot_cpu / bot_seconds:.0%} of one core)")
    print(f"  bot database use: {use}")
    print(f"  SQL statements per delivery: {statements(use) / count:.3f}")
    if not args.email:
        print(f"  receiver counted {delivered} bot deliveries")
    bare = "aiosmtplib" if args.email else "aiohttp"
    print(f"  bare {bare} loop:{' ' * (28 - len(bare))}{bare_seconds:7.2f} s  {bare_rate:8.1f}/s")
    if not args.email:
        print(f"  bare loop CPU time: {bare_cpu:.2f} s")
    print(f"  ratio bot/bare: {bot_rate / bare_rate:.2f}  (target ≥ 0.80)")
    if args.apprise and not args.email:
        rate = args.apprise / apprise_seconds
        print(f"  Apprise, {args.apprise} json:// targets: {apprise_seconds:7.2f} s  {rate:8.1f}/s")
    print(f"  bot peak RSS: {peak_mb:.0f} MB  (target ≤ 300 MB)")
    print(f"load average after the run: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")


if __name__ == "__main__":
    main()
