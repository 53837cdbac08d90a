"""The API of a real ``briefing run`` process, on SQLite and PostgreSQL: a subscription
made through it delivers at its minute, the metrics and the health check follow, and
schemathesis fuzzes every operation of ``/openapi.json`` (no 500, every answer as the
document says) with ``BRIEFING_EGRESS_ALLOWLIST=127.0.0.1``."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.dbs import database_url
from tests.processes import bot_env, start, wait_for
from tests.receivers import reply
from tests.web.conftest import TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("kind", ["sqlite", "postgresql"])]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LISTENING = re.compile(rb"HTTP on (http://127\.0\.0\.1:\d+)")


@asynccontextmanager
async def running(tmp_path: Path, kind: str, **extra: str) -> AsyncIterator[tuple[str, Path]]:
    """``briefing run`` with the API on: its base URL and its log file."""
    async with database_url(kind, tmp_path) as url:
        env = bot_env(tmp_path, url, **{"BRIEFING_API_TOKEN": TOKEN, **extra})
        log = tmp_path / "run.log"
        process = await start("run", env=env, log=log)
        try:
            await wait_for(lambda: b"running (worker" in log.read_bytes(), timeout=60)
            found = LISTENING.search(log.read_bytes())
            assert found, log.read_text()
            yield found.group(1).decode(), log
        finally:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                assert await process.wait() == 0, log.read_text()[-3000:]


async def test_a_subscription_made_through_the_api_delivers_at_its_minute(
    tmp_path, kind, receiver
) -> None:
    url = receiver.on("/desk", reply(200, "received"))
    async with (
        running(tmp_path, kind) as (base, log),
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client,
    ):
        now = datetime.now(UTC)
        minute = (now + timedelta(minutes=2 if now.second > 45 else 1)).replace(
            second=0, microsecond=0
        )
        made = await client.post(
            "/api/v1/subscriptions",
            json={"address": url, "at": f"{minute:%H:%M}", "timezone": "UTC", "name": "desk"},
        )
        assert made.status_code == 201, made.text
        created = made.json()
        assert created["next"] == minute.isoformat()
        await wait_for(lambda: receiver.hits("/desk"), timeout=150, interval=0.2)
        (hit,) = receiver.hits("/desk")
        payload = Webhook(created["secret"]).verify(hit.body, hit.headers)
        assert datetime.fromisoformat(payload["digest"]["window_end"]) == minute
        assert hit.headers["webhook-id"] == f"dlv_1_{minute:%Y%m%dT%H%M%S}Z"

        async def delivered() -> list[dict]:
            answer = await client.get("/api/v1/deliveries", params={"subscription": 1})
            return [d for d in answer.json()["items"] if d["status"] == "delivered"]

        async with asyncio.timeout(30):
            while not (done := await delivered()):
                await asyncio.sleep(0.2)
        assert done[0]["last_status"] == 200 and done[0]["answer"] == "received"
        assert done[0]["trigger"] == "scheduled" and done[0]["attempts"] == 1
        metrics = (await client.get("/metrics", headers={})).text
        assert 'briefing_deliveries_total{outcome="delivered",output="generic"} 1.0' in metrics
        assert 'briefing_queue_rows{status="delivered"} 1.0' in metrics
        assert "briefing_send_duration_seconds_count" in metrics
        tick = re.search(r"^briefing_scheduler_last_tick_timestamp_seconds (\S+)$", metrics, re.M)
        assert tick and float(tick.group(1)) > minute.timestamp()
        assert (await client.get("/healthz", headers={})).json() == {"status": "ok"}
    assert TOKEN not in log.read_text()


async def test_without_a_token_the_log_says_the_api_is_off(tmp_path, kind) -> None:
    if kind != "sqlite":
        pytest.skip("the log line does not depend on the database")
    async with running(tmp_path, kind, BRIEFING_API_TOKEN="") as (base, log):
        off = await asyncio.to_thread(httpx.get, f"{base}/api/v1/subscriptions", headers=AUTH)
    assert off.status_code == 404 and "BRIEFING_API_TOKEN" in off.json()["detail"]
    assert "the HTTP API is off: set BRIEFING_API_TOKEN" in log.read_text()


# Every check but "schema-valid data is accepted": the API checks more than a schema can
# say (the SSRF rule and the allow-list, the state's topics, a schedule that fires), and
# answers such data with a 422 problem detail.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
    "missing_required_header,unsupported_method,allow_header_conformance,use_after_free,"
    "ensure_resource_availability,ignored_auth"
)


async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(
    tmp_path, kind
) -> None:
    # The coverage phase (about 1,200 boundary and malformed requests, two thirds of the
    # time) checks validation the two databases share; it runs on PostgreSQL, whose
    # integers are the narrower, and the other phases run on both.
    phases = (
        "examples,coverage,fuzzing,stateful"
        if kind == "postgresql"
        else "examples,fuzzing,stateful"
    )
    async with running(tmp_path, kind, BRIEFING_EGRESS_ALLOWLIST="127.0.0.1") as (base, log):
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/openapi.json",
            "--header", f"Authorization: Bearer {TOKEN}", "--checks", CHECKS,
            "--phases", phases, "--max-examples", "15", "--workers", "1", "--request-timeout", "30",
            "--generation-database", "none", "--no-color", "--seed", "20251202",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL, cwd=tmp_path,
        )  # fmt: skip
        async with asyncio.timeout(400):
            out, _ = await process.communicate()
    report = out.decode()
    assert process.returncode == 0, report[-8000:]
    assert "Selected: 23/23" in report and "Tested: 23" in report, report[-3000:]
    assert "unexpected error" not in log.read_text()
