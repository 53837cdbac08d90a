"""``/healthz`` follows the scheduler: unhealthy once it has not ticked for a minute."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.web import Heartbeat
from tests.web.conftest import served

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


async def test_a_scheduler_that_stopped_ticking_makes_the_bot_unhealthy(db, caplog) -> None:
    now = [datetime(2025, 12, 2, 7, tzinfo=UTC)]
    beat = Heartbeat(started=now[0])
    async with (
        served(db, clock=lambda: now[0], heartbeat=beat) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200  # just started
        now[0] += timedelta(seconds=61)
        caplog.set_level(logging.WARNING, logger="briefing.web")
        late = await client.get("/healthz")
        assert late.status_code == 503 and late.json() == {"status": "error"}
        assert "the scheduler has not ticked since 2025-12-02T07:00:00" in caplog.text
        beat.beat(now[0])
        assert (await client.get("/healthz")).status_code == 200
