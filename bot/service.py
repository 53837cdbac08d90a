"""``briefing run``: scheduler and workers in one process, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.digest import DigestRenderer
from bot.errors import ConfigError
from bot.outputs import make_context
from bot.redact import mask_target
from bot.settings import Settings
from bot.store import states
from bot.store import subscriptions as subs
from bot.store.database import Database
from bot.worker import Worker

log = logging.getLogger("briefing")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def open_database(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Database:
    """Open (and migrate) the database; import the state files at first start."""
    db = await Database.open(settings.database_url)
    if await states.latest_revision(db) is None:
        imported = await states.import_state(db, state_dir(settings), now=clock())
        log.info(
            "imported the briefing state from %s (revision %s)",
            settings.state_dir,
            imported.revision,
        )
    return db


def state_dir(settings: Settings) -> Path:
    """``BRIEFING_STATE_DIR``, else ``config/state``, else the copy shipped in the package."""
    if settings.state_dir.exists():
        return settings.state_dir
    return Path(__file__).resolve().parent / "_state"


async def announce(db: Database, settings: Settings) -> None:
    """Say what the bot will do next."""
    if not settings.smtp_host:
        log.info(
            "no BRIEFING_SMTP_HOST: email digests are written as .eml files under %s/",
            settings.mail_dir,
        )
    active = await subs.count(db)
    if not active:
        log.info(
            "no subscriptions yet; add one with\n"
            "  briefing subscribe email you@example.org --at 07:00 --timezone Europe/Paris\n"
            "  briefing subscribe webhook https://hooks.slack.com/services/… --kind slack"
        )
        return
    for sub in await subs.upcoming(db, limit=5):
        local = sub.next_fire_at.astimezone(ZoneInfo(sub.timezone)) if sub.next_fire_at else None
        log.info(
            "next: subscription %s (%s, %s → %s) at %s %s",
            sub.id,
            sub.name,
            sub.kind,
            mask_target(sub.address),
            local.strftime("%Y-%m-%d %H:%M") if local else "?",
            sub.timezone,
        )
    log.info("%d active subscription(s)", active)


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Run scheduler and workers until ``stop`` is set (or SIGTERM/SIGINT arrives)."""
    from bot.schedule import Scheduler  # what only the long-running process needs
    from bot.web import build_app, start_http

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
            stack.callback(loop.remove_signal_handler, signum)
        db = await open_database(settings, clock=clock)
        stack.push_async_callback(db.close)
        context = make_context(settings)
        stack.push_async_callback(context.aclose)
        renderer = DigestRenderer(templates_dir=settings.templates_dir)
        worker = Worker(
            db,
            context,
            renderer=renderer,
            clock=clock,
            concurrency=settings.concurrency,
            send_timeout=settings.send_timeout.total_seconds(),
        )
        stack.push_async_callback(worker.close)
        await worker.check()  # an operator's mistake stops here, before anything is sent
        scheduler = Scheduler(db, catchup=settings.catchup, clock=clock, on_rows=worker.wake.set)
        await announce(db, settings)
        try:
            http = await start_http(
                build_app(db, clock=clock, renderer=renderer),
                host=settings.http_host,
                port=settings.http_port,
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {settings.http_host}:{settings.http_port} "
                f"(BRIEFING_HTTP_HOST/BRIEFING_HTTP_PORT): {exc.strerror}"
            ) from exc
        stack.push_async_callback(http.cleanup)
        scheduler.start()
        stack.callback(scheduler.shutdown)
        log.info("running (worker %s); stop with Ctrl-C or SIGTERM", worker.owner)
        await worker.run(stop)
    log.info("stopped")
