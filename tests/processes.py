"""Run ``briefing`` as a real process, or in this process through the same entry point,
with its own environment."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

from tests.conftest import ROOT, SEED_STATE


def bot_env(tmp_path: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")}
    env.update(
        BRIEFING_HOME=str(tmp_path / "home"),
        BRIEFING_DATABASE_URL=database_url or f"sqlite:///{tmp_path / 'briefing.db'}",
        BRIEFING_STATE_DIR=str(SEED_STATE),
        BRIEFING_MAIL_DIR=str(tmp_path / "mail"),
        BRIEFING_MAIL_FROM="Briefing <briefing@example.org>",
        BRIEFING_ALLOW_PRIVATE_TARGETS="true",
        BRIEFING_HTTP_PORT="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def invoke(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """``briefing ARGS`` in this process, through the same error handling as the script,
    with exactly the ``BRIEFING_*`` variables of ``env``: exit code, stdout, stderr. An
    exception the CLI does not turn into a message is raised here."""
    from typer.testing import CliRunner

    from bot.cli import app
    from bot.settings import get_settings

    variables: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BRIEFING_")}
    variables.update({k: v for k, v in env.items() if k.startswith("BRIEFING_")})
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, list(args), env=variables, catch_exceptions=False, prog_name="briefing"
        )
    finally:
        get_settings.cache_clear()
        root.handlers[:] = handlers
        root.setLevel(level)
    return result.exit_code, result.stdout, result.stderr


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """``invoke`` from a test's event loop: the CLI runs its own loop in a thread, while
    the test's receivers keep serving."""
    return await asyncio.to_thread(invoke, *args, env=env)


async def briefing(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd or ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(timeout):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def start(*args: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    handle = log.open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=handle,
        stdin=asyncio.subprocess.DEVNULL,
    )


async def wait_for(condition, *, timeout: float, interval: float = 0.1) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(interval)


async def bulk_subscribe(
    db, address: str, *, count: int, due: datetime, kind: str = "generic"
) -> None:
    """``count`` subscriptions whose next firing is ``due``, written in one go."""
    from bot.outputs.webhooks import new_secret
    from bot.store import subscriptions as subs

    for n in range(count):
        await subs.add(db, subs.NewSubscription(
            name=f"r{n}", kind=kind, address=address, secrets=(new_secret(),) if kind == "generic" else (),
            topics=None, locale="en", timezone="UTC", cron="0 7 * * *", skip_empty=False, next_fire_at=due,
        ), now=due)  # fmt: skip


async def delivered_count(db) -> int:
    from bot.store import outbox

    return len(await outbox.listing(db, status="delivered", limit=1_000_000))
