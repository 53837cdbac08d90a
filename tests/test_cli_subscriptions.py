"""Subscriptions, sends and deliveries through the CLI, in this process (``cli``), with a
few runs as a real process (``briefing``) to check the script itself."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest

from tests.processes import bot_env, briefing, cli
from tests.receivers import reply


@pytest.fixture
def env(tmp_path):
    return bot_env(tmp_path)


async def test_subscribe_list_show_pause_resume_remove(env, receiver) -> None:
    url = receiver.on("/services/T000/B000/XXXXXXXXSECRETTOKEN")
    code, out, err = await cli(
        "subscribe",
        "webhook",
        url,
        "--kind",
        "slack",
        "--topics",
        "military,talks",
        "--locale",
        "fr",
        "--timezone",
        "Europe/Paris",
        "--at",
        "07:30",
        "--name",
        "newsroom",
        "--json",
        env=env,
    )
    assert code == 0, err
    created = json.loads(out)
    assert (
        created["id"] == 1
        and created["cron"] == "30 7 * * *"
        and created["topics"] == ["military", "talks"]
    )
    assert "SECRETTOKEN" not in out and created["target"].endswith("…OKEN")
    assert created["next_text"].endswith(":30 CET") or created["next_text"].endswith(":30 CEST")
    upcoming = datetime.fromisoformat(created["next"])
    assert upcoming.minute == 30 and upcoming.utcoffset() in (
        timedelta(hours=1),
        timedelta(hours=2),
    )

    code, out, err = await cli(
        "subscribe", "webhook", receiver.on("/generic"), "--cron", "0 6 * * 1-5", env=env
    )
    assert code == 0, err
    secret = out.split("signing secret (shown once, keep it to verify signatures): ")[1].strip()
    assert secret.startswith("whsec_")
    code, out, err = await cli("subscribe", "email", "reader@example.org", "--skip-empty", env=env)
    assert code == 0, err

    code, out, _ = await cli("subscriptions", "list", env=env)
    assert (
        "newsroom" in out
        and "reader@example.org" in out
        and "SECRETTOKEN" not in out
        and secret not in out
    )
    code, out, _ = await cli("subscriptions", "list", "--json", env=env)
    listed = json.loads(out)
    assert [s["kind"] for s in listed] == ["slack", "generic", "email"]
    assert listed[1]["secrets"] == [f"whsec_…{secret[-4:]}"] and listed[2]["skip_empty"] is True

    code, out, _ = await cli("subscriptions", "pause", "2", "--reason", "holiday", env=env)
    assert code == 0 and "subscription 2 is now paused" in out
    code, out, _ = await cli("subscriptions", "show", "2", "--json", env=env)
    shown = json.loads(out)
    assert shown["status"] == "paused" and shown["reason"] == "holiday" and shown["next"] is None
    assert shown["next_text"] == "never"
    code, out, _ = await cli("subscriptions", "resume", "2", env=env)
    assert "now active (next digest:" in out
    code, out, _ = await cli("subscriptions", "remove", "3", env=env)
    assert code == 0
    code, out, err = await cli("subscriptions", "show", "3", env=env)
    assert code == 0, err
    assert "status: removed since " in out and ": removed by an operator" in out
    code, out, _ = await cli("subscriptions", "list", "--json", env=env)
    assert [s["id"] for s in json.loads(out)] == [1, 2]
    code, out, _ = await cli("subscriptions", "list", "--all", "--json", env=env)
    assert [(s["id"], s["status"]) for s in json.loads(out)] == [
        (1, "active"),
        (2, "active"),
        (3, "removed"),
    ]
    code, out, err = await cli("subscriptions", "show", "99", env=env)
    assert code == 2 and "no subscription 99" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["webhook", "https://example.org/h", "--cron", "0 7 * *"], "expected five fields"),
        (["webhook", "https://example.org/h", "--at", "7h"], "--at '7h': expected a time of day"),
        (
            ["webhook", "https://example.org/h", "--timezone", "Europe/Lutece"],
            "unknown timezone 'Europe/Lutece'",
        ),
        (["webhook", "https://example.org/h", "--topics", "weather"], "unknown topic 'weather'"),
        (["webhook", "https://example.org/h", "--locale", "de"], "unknown locale 'de'"),
        (["webhook", "https://example.org/h", "--kind", "pager"], "unknown output kind 'pager'"),
        (
            ["webhook", "https://example.org/h", "--secret", "whsec_c2hvcnQ="],
            "at least 24 random bytes (got 5)",
        ),
        (["email", "not-an-address"], "invalid email address"),
    ],
)
async def test_subscribe_refuses_bad_input(env, args, message) -> None:
    code, out, err = await cli("subscribe", *args, env=env)
    assert code == 2 and message in err and "Traceback" not in err


async def test_subscribe_applies_the_ssrf_rule(tmp_path) -> None:
    env = bot_env(tmp_path, BRIEFING_ALLOW_PRIVATE_TARGETS="false")
    code, out, err = await cli("subscribe", "webhook", "https://169.254.169.254/latest", env=env)
    assert code == 2 and "169.254.169.254 is a link-local address" in err


async def test_send_subscriptions_through_the_outbox(env, receiver) -> None:
    ok = receiver.on("/ok")
    broken = receiver.on("/broken", reply(400, "invalid_payload"))
    for url in (ok, broken):
        assert (await cli("subscribe", "webhook", url, "--kind", "mattermost", env=env))[0] == 0
    code, out, err = await cli("send", "--subscription", "1", env=env)
    assert code == 0, err
    assert "1 of 1 delivered or skipped; 0 failed" in out and len(receiver.hits("/ok")) == 1
    code, out, err = await cli("send", "--all", "--dry-run", env=env)
    assert code == 0 and "would send to 2 subscription(s)" in out and len(receiver.hits("/ok")) == 1
    code, out, err = await cli("send", "--all", "--json", env=env)
    assert code == 1
    result = json.loads(out)
    statuses = {d["subscription"]: (d["status"], d["trigger"]) for d in result["deliveries"]}
    assert statuses == {1: ("delivered", "manual"), 2: ("dead", "manual")} and result["failed"] == 1
    code, out, err = await cli("deliveries", "--json", env=env)
    log = json.loads(out)
    assert len(log) == 3 and {d["status"] for d in log} == {"delivered", "dead"}
    assert {d["last_status"] for d in log} == {200, 400}  # typed: HTTP status codes as integers
    assert all(
        d["next_attempt_at"] is None and d["delivered_at"] is None
        for d in log
        if d["status"] == "dead"
    )
    assert all(d["delivery_id"].startswith(f"dlv_{d['subscription']}_") for d in log)
    code, out, err = await cli("deliveries", "--subscription", "2", "--status", "dead", env=env)
    assert code == 0 and "400 HTTP 400: invalid_payload" in out
    code, out, err = await cli("deliveries", "--status", "lost", env=env)
    assert code == 2 and "unknown status 'lost'" in err


async def test_send_needs_exactly_one_target_kind(env) -> None:
    code, out, err = await cli("send", env=env)
    assert code == 2 and "exactly one of --to, --subscription or --all" in err
    code, out, err = await cli("send", "--all", env=env)
    assert code == 2 and "no active subscriptions" in err


async def test_state_import_cli(env, state_dir) -> None:
    code, out, err = await cli("state", "import", env=env)
    assert code == 0 and "unchanged: already the current revision" in out
    (state_dir / "extra.yaml").write_text(
        "developments:\n  - id: later\n    topic: talks\n    when: {at: 2025-12-03}\n"
        "    recorded: 2025-12-03T09:00:00Z\n    standing: confirmed\n    title: {en: T, fr: T}\n"
        "    summary: {en: S, fr: S}\n    sources: [report-2025-12-02]\n",
        encoding="utf-8",
    )
    code, out, err = await cli("state", "import", str(state_dir), "--json", env=env)
    assert (
        code == 0 and json.loads(out)["created"] is True and json.loads(out)["developments"] == 18
    )
    (state_dir / "extra.yaml").write_text("developments: [", encoding="utf-8")
    code, out, err = await cli("state", "import", str(state_dir), env=env)
    assert code == 2 and "extra.yaml:1: invalid YAML" in err


async def test_update_changes_options_and_schedule(env) -> None:
    code, out, err = await cli(
        "subscribe",
        "email",
        "reader@example.org",
        "--at",
        "07:00",
        "--timezone",
        "Europe/Paris",
        "--topics",
        "military",
        env=env,
    )
    assert code == 0, err
    code, out, err = await cli(
        "subscriptions",
        "update",
        "1",
        "--cron",
        "30 6 * * 1-5",
        "--timezone",
        "America/New_York",
        "--topics",
        "all",
        "--locale",
        "fr",
        "--skip-empty",
        "--json",
        env=env,
    )
    assert code == 0, err
    updated = json.loads(out)
    assert (
        updated["cron"],
        updated["timezone"],
        updated["topics"],
        updated["locale"],
        updated["skip_empty"],
    ) == ("30 6 * * 1-5", "America/New_York", None, "fr", True)
    assert " 06:30 E" in updated["next_text"]  # EST/EDT
    assert datetime.fromisoformat(updated["next"]).hour == 6
    code, out, err = await cli("subscriptions", "update", "1", "--topics", "weather", env=env)
    assert code == 2 and "unknown topic 'weather'" in err
    code, out, err = await cli("subscriptions", "update", "1", "--at", "99:00", env=env)
    assert code == 2 and "expected a time of day" in err
    code, out, err = await cli("subscriptions", "show", "1", "--json", env=env)
    assert json.loads(out)["cron"] == "30 6 * * 1-5"
    code, out, err = await cli("subscriptions", "update", "7", "--locale", "en", env=env)
    assert code == 2 and "no subscription 7" in err


async def test_preview_for_a_subscription_uses_its_options(env) -> None:
    code, out, err = await cli(
        "subscribe",
        "email",
        "reader@example.org",
        "--topics",
        "military",
        "--locale",
        "fr",
        "--timezone",
        "Asia/Tokyo",
        env=env,
    )
    assert code == 0, err
    code, out, err = await cli(
        "preview", "--subscription", "1", "--now", "2025-12-02T18:00Z", env=env
    )
    assert code == 0, err
    assert "mercredi 3 décembre 2025" in out  # 03:00 in Tokyo
    assert "== Situation militaire ==" in out and "== Négociations ==" not in out
    code, out, err = await cli("preview", "--subscription", "9", env=env)
    assert code == 2 and "no subscription 9" in err


async def test_a_paused_subscription_is_sent_to_only_with_force(env, receiver) -> None:
    url = receiver.on("/holiday")
    assert (await cli("subscribe", "webhook", url, "--kind", "slack", env=env))[0] == 0
    code, _, err = await cli("subscriptions", "pause", "1", "--reason", "on holiday", env=env)
    assert code == 0, err
    code, out, err = await cli("send", "--subscription", "1", env=env)
    assert code == 2 and receiver.hits("/holiday") == []
    assert "subscription 1 is paused (on holiday)" in err
    assert "briefing subscriptions resume 1" in err and "--force" in err and "Traceback" not in err
    code, out, err = await cli("send", "--subscription", "1", "--force", "--json", env=env)
    assert code == 0, err
    (row,) = json.loads(out)["deliveries"]
    assert row["status"] == "delivered" and row["trigger"] == "forced"
    assert len(receiver.hits("/holiday")) == 1


@pytest.mark.slow
async def test_operator_mistakes_stop_run_and_send_before_anything_is_sent(
    env, receiver, tmp_path
) -> None:
    assert (await cli("subscribe", "email", "reader@example.org", env=env))[0] == 0
    assert (await cli("subscribe", "webhook", receiver.on("/x"), "--kind", "slack", env=env))[
        0
    ] == 0
    broken_from = {**env, "BRIEFING_MAIL_FROM": "not an address"}
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.chat.j2").write_text("{{ d.story }}\n{{ d.nothing_here }}\n")
    broken_template = {**env, "BRIEFING_TEMPLATES_DIR": str(templates)}
    mistakes = ((broken_from, "BRIEFING_MAIL_FROM"), (broken_template, "digest.chat.j2:2"))
    runs = await asyncio.gather(*(briefing("run", env=bad, timeout=60) for bad, _ in mistakes))
    for (bad, named), (code, out, err) in zip(mistakes, runs, strict=True):  # real processes
        assert code == 2, ("run", out, err)
        assert named in err and "Traceback" not in err, err
        code, out, err = await cli("send", "--all", env=bad)
        assert code == 2, ("send", out, err)
        assert named in err and "Traceback" not in err, err
    code, out, _ = await cli("deliveries", "--json", env=env)
    assert json.loads(out) == [] and receiver.hits("/x") == []
    code, out, _ = await cli("subscriptions", "list", "--json", env=env)
    assert {s["status"] for s in json.loads(out)} == {"active"}


async def test_the_script_subscribes_lists_and_reports_errors(env) -> None:
    """The same commands as a real process: the console entry point and its exit codes."""
    code, out, err = await briefing(
        "subscribe", "email", "reader@example.org", "--at", "06:15", "--json", env=env
    )
    assert code == 0, err
    assert json.loads(out)["cron"] == "15 6 * * *"
    code, out, err = await briefing("subscriptions", "list", env=env)
    assert code == 0 and "reader@example.org" in out
    code, out, err = await briefing("subscriptions", "show", "7", "--json", env=env)
    assert code == 2 and json.loads(err) == {"error": "no subscription 7", "code": 2}
