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

from bot.crypto import Keyring
from bot.digest import DigestRenderer
from bot.errors import ConfigError
from bot.outputs import make_context
from bot.redact import mask_target
from bot.settings import Settings, shipped_state_dir
from bot.store import states
from bot.store import subscriptions as subs
from bot.store.database import Database, database_file, shown_url
from bot.worker import Worker

log = logging.getLogger("briefing")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def open_database(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Database:
    """Open (and migrate) the database; import the state files at first start."""
    keyring = Keyring.from_setting(settings.secret_key)
    make_home(settings)
    db = await Database.open(settings.database_url, keyring=keyring)
    if await states.latest_revision(db) is None:
        source = state_dir(settings)
        imported = await states.import_state(db, source, now=clock())
        log.info("imported the briefing state from %s (revision %s)", source, imported.revision)
    return db


async def cancelled(task: asyncio.Task[None]) -> None:
    """Stop ``task`` and wait for it (a feed poll cut short writes nothing)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def make_home(settings: Settings) -> None:
    """Create the data directory (``BRIEFING_HOME``, owner only) when the database lives
    in it; any other database directory must already exist."""
    if not in_home(settings):
        return
    try:
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the data directory {settings.home} (BRIEFING_HOME): "
            f"{exc.strerror or exc}"
        ) from exc


def in_home(settings: Settings) -> bool:
    """Whether the database is a SQLite file directly in the data directory."""
    path = database_file(settings.database_url)
    return path is not None and path.absolute().parent == settings.home.absolute()


def state_dir(settings: Settings) -> Path:
    """``BRIEFING_STATE_DIR``, else the state shipped with the bot (the checkout's
    ``config/state``, or its copy in the installed package)."""
    return settings.state_dir if settings.state_dir is not None else shipped_state_dir()


async def announce(db: Database, settings: Settings) -> None:
    """Say what the bot will do next."""
    await subs.check_keys(db)  # a missing or wrong BRIEFING_SECRET_KEY stops here
    if not db.keyring.enabled:
        log.warning(
            "BRIEFING_SECRET_KEY is not set: webhook URLs and signing secrets are stored in "
            "the clear; set it to a key from 'briefing secrets key', then run "
            "'briefing secrets rotate'"
        )
    elif clear := await subs.in_the_clear(db):
        log.warning(
            "%d webhook subscription(s) are stored in the clear: run 'briefing secrets rotate'",
            clear,
        )
    if not settings.smtp_host:
        log.info(
            "no BRIEFING_SMTP_HOST: email digests are written as .eml files under %s/",
            settings.mail_dir,
        )
    active = await subs.count(db)
    if not active:
        log.info("no subscriptions yet; add one with")
        log.info("  briefing subscribe email you@example.org --at 07:00 --timezone Europe/Paris")
        log.info("  briefing subscribe webhook https://hooks.slack.com/services/… --kind slack")
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
    from bot.feeds.operations import load_feed_set  # what only the long-running process needs
    from bot.feeds.poller import FeedPoller
    from bot.schedule import Scheduler
    from bot.web import Heartbeat, WebContext, build_app, start_http
    from bot.web.auth import configured

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
            stack.callback(loop.remove_signal_handler, signum)
        log.info("data directory: %s (BRIEFING_HOME)", settings.home)
        log.info("database: %s", shown_url(settings.database_url))
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
            stale_after=settings.stale_after,
        )
        stack.push_async_callback(worker.close)
        await worker.check()  # an operator's mistake stops here, before anything is sent
        heartbeat = Heartbeat(started=clock())
        scheduler = Scheduler(
            db,
            catchup=settings.catchup,
            clock=clock,
            on_rows=worker.wake.set,
            on_tick=heartbeat.beat,
        )
        # a bad feeds.yaml or topics.yaml stops here too (checked against the state's topics)
        state = await worker.preparer.states.latest()
        feeds = await load_feed_set(db, settings, known=list(state.topics) if state else None)
        await announce(db, settings)
        web = WebContext(
            db=db,
            settings=settings,
            clock=clock,
            renderer=renderer,
            heartbeat=heartbeat,
            wake=worker.wake.set,
        )
        worker.on_sent.append(web.metrics.sent)
        if configured(settings.api_token) is None:
            log.info("the HTTP API is off: set BRIEFING_API_TOKEN to turn it on")
        try:
            http = await start_http(
                build_app(web), host=settings.http_host, port=settings.http_port
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {settings.http_host}:{settings.http_port} "
                f"(BRIEFING_HTTP_HOST/BRIEFING_HTTP_PORT): {exc.strerror}"
            ) from exc
        stack.push_async_callback(http.close)
        scheduler.start()
        stack.callback(scheduler.shutdown)
        poller = FeedPoller(db, feeds, clock=clock)
        poller.on_polled.append(web.metrics.polled)
        stack.push_async_callback(cancelled, asyncio.create_task(poller.run(stop)))
        log.info("running (worker %s); stop with Ctrl-C or SIGTERM", worker.owner)
        await worker.run(stop)
    log.info("stopped")
