"""``briefing run`` as a real process: schedules, manual sends, shutdown, crash recovery."""

from __future__ import annotations

import asyncio
import collections
import json
import signal
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from standardwebhooks.webhooks import Webhook

from bot.outputs.webhooks import new_secret
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database
from bot.worker.worker import BATCH
from tests.processes import bot_env, cli, start, wait_for
from tests.receivers import HttpReceiver, hang

pytestmark = pytest.mark.slow


async def test_run_delivers_each_digest_at_its_minute_and_manual_sends_at_once(
    tmp_path, receiver, smtp
) -> None:
    port, mailbox = smtp
    env = bot_env(
        tmp_path,
        BRIEFING_SMTP_HOST="127.0.0.1",
        BRIEFING_SMTP_PORT=str(port),
        BRIEFING_SMTP_SECURITY="none",
    )
    code, out, err = await cli(
        "subscribe",
        "webhook",
        receiver.on("/ny"),
        "--cron",
        "* * * * *",
        "--timezone",
        "America/New_York",
        "--json",
        env=env,
    )
    assert code == 0, err
    secret = json.loads(out)["secret"]
    code, out, err = await cli(
        "subscribe",
        "email",
        "tokyo@example.org",
        "--cron",
        "* * * * *",
        "--timezone",
        "Asia/Tokyo",
        "--locale",
        "fr",
        env=env,
    )
    assert code == 0, err
    manual = "/hooks/SECRETTOKEN12345"
    code, out, err = await cli(
        "subscribe",
        "webhook",
        receiver.on(manual),
        "--kind",
        "mattermost",
        "--cron",
        "0 0 1 1 *",
        env=env,
    )
    assert code == 0, err
    log = tmp_path / "run.log"
    process = await start("run", env=env, log=log)
    try:
        await wait_for(lambda: b"running (worker" in log.read_bytes(), timeout=30)
        text = log.read_text()
        assert "next: subscription 1" in text and "3 active subscription(s)" in text
        started = datetime.now(UTC)
        code, out, err = await cli("send", "--subscription", "3", env=env)
        assert code == 0, err
        assert len(receiver.hits(manual)) == 1 and datetime.now(UTC) - started < timedelta(
            seconds=20
        )
        await wait_for(lambda: receiver.hits("/ny") and mailbox.messages, timeout=75)
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    text = log.read_text()
    assert (
        "stopped" in text and "queued 2 deliveries" in text and "next firing: subscription" in text
    )
    assert "SECRETTOKEN12345" not in text  # token-bearing URLs are masked in logs
    request = receiver.hits("/ny")[0]
    payload = Webhook(secret).verify(request.body, request.headers)
    window_end = datetime.fromisoformat(payload["digest"]["window_end"])
    assert window_end.second == 0 and window_end.microsecond == 0
    assert payload["digest"][
        "timezone"
    ] == "America/New_York" and window_end.utcoffset() == timedelta(hours=-5)
    assert request.headers["webhook-id"] == f"dlv_1_{window_end.astimezone(UTC):%Y%m%dT%H%M%S}Z"
    mail = message_from_bytes(mailbox.messages[0].original_content, policy=default_policy)
    assert mail["To"] == "tokyo@example.org" and mail["Message-ID"].startswith("<dlv_2_")
    assert "Pourparlers de paix" in mail["Subject"]


async def test_kill_during_fan_out_then_restart_delivers_each_once(tmp_path) -> None:
    receiver = HttpReceiver()
    await receiver.start()
    url = receiver.on("/fan", hang(0.02))
    env = bot_env(tmp_path, BRIEFING_CONCURRENCY="32")
    db = await Database.open(env["BRIEFING_DATABASE_URL"])
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        for n in range(1000):
            await subs.add(db, subs.NewSubscription(
                name=f"r{n}", kind="generic", address=url, secrets=(new_secret(),), topics=None, locale="en",
                timezone="UTC", cron="0 7 * * *", skip_empty=False, next_fire_at=now,
            ), now=now)  # fmt: skip
        first = await start("run", env=env, log=tmp_path / "first.log")
        await wait_for(lambda: len(receiver.hits("/fan")) >= 300, timeout=60)
        first.kill()
        await first.wait()
        seen_at_kill = len(receiver.hits("/fan"))
        assert seen_at_kill < 1000
        second = await start("run", env=env, log=tmp_path / "second.log")
        try:

            async def all_delivered() -> bool:
                rows = await outbox.listing(db, status="delivered", limit=2000)
                return len(rows) >= 1000

            async with asyncio.timeout(90):
                while not await all_delivered():
                    await asyncio.sleep(0.5)
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
        rows = await outbox.listing(db, limit=5000)
    finally:
        await db.close()
        await receiver.stop()
    per_sub = collections.Counter((r.subscription_id, r.status) for r in rows)
    assert len(rows) == 1000 and all(per_sub[(i, "delivered")] == 1 for i in range(1, 1001))
    seen = collections.Counter(h.headers["webhook-id"] for h in receiver.hits("/fan"))
    assert set(seen) == {r.delivery_id for r in rows}
    repeated = {key for key, count in seen.items() if count > 1}
    taken_over = {r.delivery_id for r in rows if r.attempts > 1}
    # only rows the killed worker held (claimed, at most 4 × concurrency in hand, or sent
    # but not yet recorded, at most one batch) can have reached the receiver twice, and
    # each at most twice
    assert repeated <= taken_over and max(seen.values()) <= 2
    assert len(taken_over) <= 4 * 32 + BATCH, len(taken_over)
