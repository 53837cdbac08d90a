"""``briefing send --to``: one-off sends, in this process (``briefing``) and as a real
process (``script``)."""

from __future__ import annotations

import json
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from tests.processes import bot_env, cli
from tests.processes import briefing as run_briefing
from tests.receivers import reply


def environment(**env: str) -> dict[str, str]:
    """The private-target switch off unless the test turns it on; no database (one-off
    sends need none), mail under BRIEFING_HOME."""
    variables = bot_env(Path("/nonexistent"), BRIEFING_ALLOW_PRIVATE_TARGETS="false")
    variables.pop("BRIEFING_MAIL_DIR")
    variables.update(env)
    return variables


async def briefing(*args: str, **env: str) -> tuple[int, str, str]:
    return await cli(*args, env=environment(**env))


async def script(*args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    return await run_briefing(*args, env=environment(**env), cwd=cwd)


async def test_send_to_generic_generates_a_secret_the_receiver_can_verify(receiver) -> None:
    url = receiver.on("/hook")
    code, out, err = await script(
        "send",
        "--to",
        url,
        "--json",
        "--now",
        "2025-12-02T18:00Z",
        cwd=Path.cwd(),
        BRIEFING_ALLOW_PRIVATE_TARGETS="true",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and result["kind"] == "generic" and result["attempts"] == 1
    assert result["status"] == 200 and result["answer"] == "ok"
    (request,) = receiver.hits("/hook")
    payload = Webhook(result["new_secret"]).verify(request.body, request.headers)
    assert payload["digest"]["window_end"].startswith("2025-12-02T18:00:00")


async def test_send_to_with_a_secret_and_a_kind(receiver) -> None:
    url = receiver.on("/slackish")
    code, out, err = await briefing(
        "send",
        "--to",
        url,
        "--kind",
        "slack",
        "--topics",
        "military",
        "--locale",
        "fr",
        BRIEFING_ALLOW_PRIVATE_TARGETS="true",
    )
    assert code == 0, err
    assert "slack → " in out and "delivered — status 200 after 1 attempt(s)" in out
    blocks = receiver.hits("/slackish")[0].json()["blocks"]
    assert blocks[0]["type"] == "header" and "Pourparlers" in blocks[0]["text"]["text"]
    assert "signing secret" not in out


async def test_send_to_reports_failure_with_exit_1(receiver) -> None:
    url = receiver.on("/gone", reply(410, "channel_is_archived"))
    code, out, err = await briefing(
        "send", "--to", url, "--kind", "mattermost", BRIEFING_ALLOW_PRIVATE_TARGETS="true"
    )
    assert code == 1
    assert "FAILED — status 410 after 1 attempt(s); answer: HTTP 410: channel_is_archived" in out


async def test_send_to_retries_then_succeeds(receiver) -> None:
    url = receiver.on("/busy", reply(429, "slow", {"Retry-After": "1"}), reply(200, "ok"))
    code, out, err = await briefing(
        "send", "--to", url, "--kind", "teams", "--json", BRIEFING_ALLOW_PRIVATE_TARGETS="true"
    )
    assert code == 0, err
    assert json.loads(out)["attempts"] == 2 and len(receiver.hits("/busy")) == 2


async def test_send_to_dry_run_sends_nothing(receiver) -> None:
    url = receiver.on("/dry")
    code, out, err = await briefing(
        "send", "--to", url, "--dry-run", "--kind", "discord", BRIEFING_ALLOW_PRIVATE_TARGETS="true"
    )
    assert code == 0, err
    assert "dry run" in out and receiver.hits("/dry") == []


async def test_send_to_private_target_is_refused_by_default(receiver) -> None:
    code, out, err = await briefing(
        "send", "--to", f"https://127.0.0.1:{receiver.port}/x", "--kind", "slack"
    )
    assert code == 2 and "127.0.0.1 is a loopback address" in err
    assert receiver.requests == []


async def test_send_to_email_without_smtp_writes_eml_in_the_data_directory(tmp_path) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    code, out, err = await script(
        "send",
        "--to",
        "reader@example.org",
        "--json",
        cwd=elsewhere,
        BRIEFING_HOME=str(tmp_path / "data"),
        BRIEFING_SMTP_HOST="",
        BRIEFING_MAIL_FROM="Briefing <b@example.org>",
    )
    assert code == 0, err
    files = list((tmp_path / "data" / "mail").glob("*.eml"))
    result = json.loads(out)
    assert len(files) == 1 and result["status"] == "written" and result["kind"] == "email"
    assert list(elsewhere.iterdir()) == []
    code, out, err = await briefing(
        "send",
        "--to",
        "reader@example.org",
        BRIEFING_HOME=str(tmp_path / "data"),
        BRIEFING_SMTP_HOST="",
        BRIEFING_MAIL_FROM="Briefing <b@example.org>",
    )
    assert code == 0, err
    assert "email → reader@example.org: delivered — status written" in out
    assert len(list((tmp_path / "data" / "mail").glob("*.eml"))) == 2


async def test_send_to_bad_address() -> None:
    code, out, err = await briefing("send", "--to", "reader@")
    assert code == 2 and "invalid email address 'reader@'" in err


async def test_send_to_something_neither_url_nor_address() -> None:
    code, out, err = await briefing("send", "--to", "not-an-email")
    assert code == 2
    assert err == (
        "error: --to 'not-an-email': neither a webhook URL (https://…) nor an email address "
        "(name@example.org)\n"
    )
    code, out, err = await briefing("send", "--to", "not-an-email", "--json")
    assert code == 2 and out == ""
    assert json.loads(err) == {
        "error": "--to 'not-an-email': neither a webhook URL (https://…) nor an email address "
        "(name@example.org)",
        "code": 2,
    }


async def test_send_to_a_telegram_channel_reads_the_token_from_the_environment(
    monkeypatch,
) -> None:
    from tests.outputs.platforms import TELEGRAM_CHAT, TELEGRAM_TOKEN, PlatformReceiver

    api = PlatformReceiver()
    await api.start()
    monkeypatch.setenv("TG_TOKEN", TELEGRAM_TOKEN)
    try:
        address = f"{api.base}/tg/{TELEGRAM_CHAT}"  # a Bot API server of its own, on loopback
        code, out, err = await briefing(
            "send", "--to", address, "--kind", "telegram", "--token-env", "TG_TOKEN", "--json",
            BRIEFING_ALLOW_PRIVATE_TARGETS="true",
        )  # fmt: skip
        requests = api.under("/tg")
    finally:
        await api.stop()
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and result["kind"] == "telegram" and result["parts"] == len(requests)
    assert requests[0].path == f"/tg/bot{TELEGRAM_TOKEN}/sendMessage"
    assert TELEGRAM_TOKEN.partition(":")[2] not in out + err


async def test_send_to_names_an_unset_token_variable() -> None:
    code, out, err = await briefing("send", "--to", "@briefing_news", "--token-env", "NO_SUCH_VAR")
    assert code == 2 and "--token-env NO_SUCH_VAR" in err and "not set" in err
