"""``briefing outputs`` and ``briefing subscribe telegram|matrix|…`` (bot/cli/outputs.py),
run on an app of their own (the commands are added to the main one by ``register``)."""

from __future__ import annotations

import json
import sys

import pytest
import typer
from typer.testing import CliRunner

from bot.cli.outputs import register
from bot.settings import get_settings
from tests.conftest import SEED_STATE
from tests.outputs.platforms import MATRIX_TOKEN, TELEGRAM_TOKEN


@pytest.fixture
def run(tmp_path):
    app = typer.Typer()
    subscribe = typer.Typer()
    app.add_typer(subscribe, name="subscribe")
    register(app, subscribe)
    env = {
        "BRIEFING_HOME": str(tmp_path / "home"),
        "BRIEFING_DATABASE_URL": f"sqlite:///{tmp_path / 'briefing.db'}",
        "BRIEFING_STATE_DIR": str(SEED_STATE),
        "BRIEFING_ALLOW_PRIVATE_TARGETS": "true",
        "TG_TOKEN": TELEGRAM_TOKEN,
        "MX_TOKEN": MATRIX_TOKEN,
    }

    def invoke(*args: str):
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), env=env)
        finally:
            get_settings.cache_clear()

    return invoke


def test_outputs_lists_every_kind(run) -> None:
    result = run("outputs", "--json")
    assert result.exit_code == 0, result.output
    kinds = {row["kind"]: row for row in json.loads(result.output)}
    assert {"telegram", "matrix", "googlechat", "ntfy", "zulip", "apprise", "slack"} <= set(kinds)
    assert kinds["telegram"]["hosts"] == ["api.telegram.org"]
    assert kinds["telegram"]["formats"] == ["chat_html"]
    for kind in ("telegram", "matrix", "googlechat", "ntfy", "zulip", "apprise"):
        assert all(kinds[kind][key] for key in ("target", "limits", "secrets")), kinds[kind]
    assert "4,096 characters" in kinds["telegram"]["limits"]
    assert "token" in kinds["telegram"]["secrets"] and "key" in kinds["zulip"]["secrets"]
    assert "room id" in kinds["matrix"]["claims"]
    text = run("outputs").output
    assert "https://HOMESERVER/#/!room:server" in text and "10,000 bytes a message" in text


PLUGIN = """
from bot.outputs import Output


class CourierOutput(Output):
    name = "courier"
    formats = ("text",)
    target_form = "a loft's name"

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        raise NotImplementedError
"""


def test_outputs_lists_plugins_too(run, tmp_path, monkeypatch) -> None:
    from bot.outputs.registry import output_classes

    (tmp_path / "courier_output.py").write_text(PLUGIN, encoding="utf-8")
    dist = tmp_path / "courier_output-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: courier-output\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[briefing.outputs]\ncourier = courier_output:CourierOutput\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    output_classes.cache_clear()
    try:
        rows = {row["kind"]: row for row in json.loads(run("outputs", "--json").output)}
        text = run("outputs").output
    finally:
        monkeypatch.delitem(sys.modules, "courier_output", raising=False)
        output_classes.cache_clear()
    assert rows["courier"]["target"] == "a loft's name" and rows["courier"]["secrets"] == ""
    (line,) = [line for line in text.splitlines() if line.startswith("courier")]
    assert "a loft's name" in line and "—" in line


def test_subscribe_telegram_takes_the_token_from_the_environment(run) -> None:
    result = run(
        "subscribe", "telegram", "--chat", "@briefing_test", "--api", "http://127.0.0.1:9",
        "--token-env", "TG_TOKEN", "--at", "07:30", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["kind"] == "telegram" and created["cron"] == "30 7 * * *"
    assert TELEGRAM_TOKEN not in result.output and TELEGRAM_TOKEN.split(":")[1] not in result.output


def test_subscribe_matrix(run) -> None:
    result = run(
        "subscribe", "matrix", "--homeserver", "http://127.0.0.1:9", "--room",
        "!briefing:example.org", "--token-env", "MX_TOKEN", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["kind"] == "matrix" and MATRIX_TOKEN not in result.output


def test_an_unset_variable_is_named(run) -> None:
    result = run("subscribe", "telegram", "--chat", "@briefing_test", "--token-env", "NOPE_VAR")
    assert result.exit_code != 0
    # the error is printed (a usage error) or raised for the root command to print
    raised = "" if isinstance(result.exception, SystemExit) else str(result.exception)
    message = f"{result.output} {raised}"
    assert "--token-env NOPE_VAR" in message and "not set" in message


def test_the_briefing_command_has_them(tmp_path) -> None:
    from tests.processes import bot_env, invoke

    env = bot_env(tmp_path)
    code, out, err = invoke("preview", "--format", "telegram", "--now", "2025-12-02T18:00:00Z",
                            env=env)  # fmt: skip
    assert code == 0, err
    parts = json.loads(out)
    assert parts and all(p["parse_mode"] == "HTML" for p in parts)
    code, out, err = invoke("preview", "--format", "apprise", "--now", "2025-12-02T18:00:00Z",
                            env=env)  # fmt: skip
    assert code == 0 and all(set(p) == {"title", "body"} for p in json.loads(out)), err
    code, out, err = invoke("outputs", "--json", env=env)
    assert code == 0 and "zulip" in {row["kind"] for row in json.loads(out)}, err
    code, out, err = invoke("subscribe", "--help", env=env)
    assert all(kind in out for kind in ("telegram", "matrix", "googlechat", "ntfy", "zulip"))
