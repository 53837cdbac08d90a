"""What the CLI prints: errors (one line, or JSON), help, listings, logs; and where it keeps
its data, whatever the directory it runs from."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import ENVIRONMENT, app
from bot.settings import Settings
from tests.processes import bot_env, invoke

NOW = "2025-12-02T18:00Z"


@pytest.fixture
def env(tmp_path):
    return bot_env(tmp_path)


def one_line_error(code: int, out: str, err: str) -> str:
    assert out == "", out
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err
    return err


# ── No tracebacks: each problem seen, one line naming it, exit 1 or 2 ─────────────────────


@pytest.mark.parametrize(
    ("args", "variables", "message"),
    [
        (
            ["subscriptions", "show", "99999999999999999999999"],
            {},
            "ID: 99999999999999999999999 is not a subscription id (1 to 2147483647)",
        ),
        (["subscriptions", "show", "2147483648"], {}, "ID: 2147483648 is not a subscription id"),
        (["review", "accept", "99999999999999999999999"], {}, "ID: 999999999999999999999"),
        (["review", "reject", "2147483648"], {}, "ID: 2147483648 is not an entry id"),
        (
            ["prune", "--older-than", "99999999999d"],
            {},
            "--older-than: '99999999999d' goes back further than dates do",
        ),
        (["subscriptions", "pause", "0"], {}, "ID: 0 is not a subscription id"),
        (["send", "--subscription", "9223372036854775808"], {}, "--subscription: 92233"),
        (["deliveries", "--subscription", "99999999999999999999999"], {}, "--subscription"),
        (["deliveries", "--limit", "0"], {}, "--limit"),
        (["preview", "--now", "0001-01-01"], {}, "--now: '0001-01-01' is out of range"),
        (["preview", "--now", "9999-12-31T23:00"], {}, "(years 2 to 9998)"),
        (["preview", "--since", "0001-01-01", "--now", NOW], {}, "--since: '0001-01-01'"),
        (
            ["subscriptions", "list"],
            {"BRIEFING_DATABASE_URL": "sqlite+aiosqlite:////proc/self/x/y.db"},
            "the database's directory /proc/self/x does not exist",
        ),
        (
            ["subscriptions", "list"],
            {"BRIEFING_DATABASE_URL": "sqlite+pysqlite:////tmp/e2.db"},
            "unsupported database driver 'sqlite+pysqlite' in BRIEFING_DATABASE_URL "
            "(supported: sqlite://, sqlite+aiosqlite://, postgresql://",
        ),
        (
            ["subscriptions", "list"],
            {"BRIEFING_DATABASE_URL": "mysql://u@h/db"},
            "unsupported database 'mysql'",
        ),
        (
            ["subscribe", "email", "a@example.org", "--cron", "0 0 31 2 *"],
            {},
            "--cron '0 0 31 2 *' never fires",
        ),
        (["subscribe", "email", "a@example.org", "--timezone", ""], {}, "--timezone: empty"),
        (["subscribe", "email", "a@example.org", "--locale", ""], {}, "--locale: empty"),
        (["subscribe", "email", "a@example.org", "--topics", ""], {}, "--topics: empty"),
        (["subscribe", "email", "a@example.org", "--topics", " , "], {}, "--topics: empty"),
        (["subscribe", "email", "a@example.org", "--at", ""], {}, "--at: empty"),
        (["subscribe", "email", "a@example.org", "--name", ""], {}, "--name: empty"),
        (
            ["subscribe", "email", "a@example.org", "--name", "red \x1b[31malert"],
            {},
            "--name: control character U+001B not allowed (at position 5)",
        ),
        (
            ["subscribe", "email", "a@example.org", "--name", "two\nlines"],
            {},
            "--name: control character U+000A",
        ),
        (
            ["subscribe", "email", "a@example.org", "--name", "csi \x9b1m"],
            {},
            "--name: control character U+009B",
        ),
        (
            ["subscribe", "email", "a@example.org", "--name", "n" * 201],
            {},
            "--name: too long: 201 characters (at most 200)",
        ),
        (["subscriptions", "pause", "1", "--reason", "r" * 300], {}, "--reason: too long: 300"),
        (["preview", "--timezone", ""], {}, "--timezone: empty"),
        (["subscribe", "webhook", " "], {}, "URL: empty"),
        (["subscribe", "email", ""], {}, "ADDRESS: empty"),
        (["send", "--to", ""], {}, "--to: empty"),
        (
            ["preview", "--format", "pdf"],
            {},
            "--format: unknown format 'pdf' (known: text, markdown, html, json, apprise, discord, ",
        ),
        (
            ["send", "--to", "not-an-email"],
            {},
            "--to 'not-an-email': neither a webhook URL (https://…) nor an email address",
        ),
        (["send", "--subscription", "abc"], {}, "--subscription: "),
        (
            ["send", "--all", "--topics", "talks", "--now", NOW],
            {},
            "--topics, --now: only with --to (a subscription is sent as it is set up)",
        ),
        (["nonsense"], {}, "No such command 'nonsense'"),
    ],
)
def test_every_problem_is_one_line_and_an_exit_code(env, args, variables, message) -> None:
    code, out, err = invoke(*args, env={**env, **variables})
    assert code == 2, (code, out, err)
    assert message in one_line_error(code, out, err)


def test_the_preview_formats_come_from_the_renderer_and_the_output_registry(env) -> None:
    from bot.outputs import output_classes
    from bot.outputs.api import ApiOutput
    from bot.outputs.webhooks import WebhookOutput

    code, out, err = invoke("preview", "--format", "pdf", env=env)
    known = err.split("(known: ")[1].rstrip(")\n").split(", ")
    posted = (WebhookOutput, ApiOutput)
    webhooks = [n for n, cls in output_classes().items() if issubclass(cls, posted)]
    assert known[:4] == ["text", "markdown", "html", "json"] and "chat" not in known
    assert known[4:] == sorted(known[4:]) and set(webhooks) <= set(known[4:])
    assert {"discord", "mattermost", "slack", "teams", "generic"} <= set(known)
    code, out, err = invoke("preview", "--format", "discord", "--now", NOW, env=env)
    assert code == 0 and isinstance(json.loads(out), list), err


def test_a_missing_database_directory_is_not_created(env, tmp_path) -> None:
    missing = tmp_path / "missing" / "deeper"
    code, out, err = invoke(
        "subscriptions", "list", env={**env, "BRIEFING_DATABASE_URL": f"sqlite:///{missing}/b.db"}
    )
    assert code == 2 and f"the database's directory {missing} does not exist" in err
    assert not (tmp_path / "missing").exists()


def test_the_default_data_directory_is_created(env, tmp_path) -> None:
    home = tmp_path / "new" / "home"
    variables = {**env, "BRIEFING_HOME": str(home)}
    del variables["BRIEFING_DATABASE_URL"]
    code, out, err = invoke("subscriptions", "list", env=variables)
    assert code == 0, err
    assert (home / "briefing.db").is_file() and home.stat().st_mode & 0o077 == 0


def test_a_repeated_topic_is_stored_once(env) -> None:
    code, out, err = invoke(
        "subscribe", "email", "a@example.org", "--topics", "military, talks,military", "--json",
        env=env,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["topics"] == ["military", "talks"]


# ── JSON: typed values, and errors as a JSON object on stderr ────────────────────────────


def test_errors_are_json_with_json(env, state_dir) -> None:
    code, out, err = invoke("subscriptions", "show", "4", "--json", env=env)
    assert (code, out) == (2, "") and json.loads(err) == {"error": "no subscription 4", "code": 2}
    code, out, err = invoke("send", "--subscription", "x", "--json", env=env)
    problem = json.loads(err)
    assert code == 2 and problem["code"] == 2 and problem["error"].startswith("--subscription: ")
    (state_dir / "zz.yaml").write_text("developments: [", encoding="utf-8")
    code, out, err = invoke("state", "import", str(state_dir), "--json", env=env)
    problem = json.loads(err)
    assert code == 2 and problem["error"] == "1 problem(s) in the state"
    (listed,) = problem["problems"]
    assert listed.startswith("zz.yaml:1: invalid YAML: ")
    code, out, err = invoke("state", "import", str(state_dir), env=env)
    assert code == 2 and err == listed + "\n"


def test_json_is_typed(env) -> None:
    code, out, err = invoke(
        "subscribe", "email", "a@example.org", "--at", "07:30", "--timezone", "Asia/Tokyo",
        "--json", env=env,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    upcoming = datetime.fromisoformat(data["next"])
    assert upcoming.tzinfo is not None and (upcoming.hour, upcoming.minute) == (7, 30)
    assert data["next_text"].endswith("07:30 JST")
    assert data["topics"] is None and data["reason"] is None and data["skip_empty"] is False
    for stamp in ("created_at", "updated_at"):
        assert datetime.fromisoformat(data[stamp]).tzinfo is not None
    invoke("subscriptions", "pause", "1", "--reason", "holiday", env=env)
    code, out, err = invoke("subscriptions", "show", "1", "--json", env=env)
    data = json.loads(out)
    assert data["next"] is None and data["next_text"] == "never" and data["reason"] == "holiday"


# ── Text: yes/no, never, one source, the reason in its own column, escapes ────────────────


def test_show_and_list_read_as_text(env) -> None:
    invoke("subscribe", "email", "a@example.org", "--skip-empty", "--name", "desk", env=env)
    invoke("subscribe", "email", "b@example.org", env=env)
    code, out, err = invoke("subscriptions", "pause", "1", "--reason", "on holiday", env=env)
    assert code == 0, err
    code, out, err = invoke("subscriptions", "show", "1", env=env)
    assert code == 0, err
    assert "None" not in out and "False" not in out and "True" not in out
    assert "skip empty digests: yes" in out and "next: never" in out and "topics: all" in out
    assert "status: paused since " in out and out.rstrip().endswith(" UTC")
    assert ": on holiday" in out
    code, out, err = invoke("subscriptions", "show", "2", env=env)
    assert "skip empty digests: no" in out and "status: active" in out
    code, out, err = invoke("subscriptions", "list", env=env)
    header, paused, active = out.splitlines()
    columns = header.split()
    assert columns[-3:] == ["next", "since", "reason"]
    assert paused.index("—") < paused.index("on holiday")
    assert paused[header.index("next") :].startswith("—")
    assert "on holiday" not in active and "UTC" in active[header.index("next") :]


def test_a_removed_subscription_is_shown_but_not_acted_on(env) -> None:
    invoke("subscribe", "email", "a@example.org", env=env)
    code, out, err = invoke("subscriptions", "remove", "1", env=env)
    assert code == 0 and "subscription 1 is now removed" in out
    code, out, err = invoke("subscriptions", "list", "--all", env=env)
    assert "removed" in out and "removed by an operator" in out
    for args in (
        ["subscriptions", "pause", "1"],
        ["subscriptions", "update", "1", "--locale", "fr"],
        ["send", "--subscription", "1"],
        ["preview", "--subscription", "1"],
    ):
        code, out, err = invoke(*args, env=env)
        assert code == 2, (args, out, err)
        assert "subscription 1 was removed on " in one_line_error(code, out, err)
        assert "(removed by an operator)" in err


def test_state_validate_counts_in_the_singular_and_plural(env) -> None:
    code, out, err = invoke("state", "validate", env=env)
    assert code == 0, err
    assert "— 4 topics, 18 actors, 1 source, 17 developments (revision " in out


def test_state_import_refuses_what_would_break_sending(env, state_dir) -> None:
    from tests.conftest import extra_development, write_developments

    code, out, err = invoke("state", "import", env=env)
    assert code == 0, err
    for title, problem in [
        ("Two\rlines", "developments.0.title.en: U+000D (carriage return) at character 4"),
        ("Sep\u2028arated", "developments.0.title.en: U+2028 (line separator) at character 4"),
        ("x" * 201, "developments.0.title.en: too long: 201 characters (at most 200)"),
    ]:
        write_developments(state_dir, extra_development("later", title_en=title))
        code, out, err = invoke("state", "import", str(state_dir), env=env)
        assert code == 2 and err.startswith("zz_extra.yaml:") and problem in err, err
    (state_dir / "zz_extra.yaml").write_text("", encoding="utf-8")
    code, out, err = invoke("state", "import", str(state_dir), env=env)
    assert (code, err) == (2, "zz_extra.yaml:1: the file is empty\n")
    (state_dir / "zz_extra.yaml").unlink()
    code, out, err = invoke("state", "import", str(state_dir), env=env)
    assert code == 0 and "unchanged: already the current revision" in out, (out, err)


async def test_control_characters_stored_earlier_are_escaped_in_listings(env) -> None:
    from bot.store import subscriptions as subs
    from bot.store.database import Database

    code, _, _ = await asyncio.to_thread(invoke, "subscriptions", "list", env=env)
    assert code == 0  # the database is made
    db = await Database.open(env["BRIEFING_DATABASE_URL"])
    try:
        await subs.add(db, subs.NewSubscription(
            name="red \x1b[31mALERT\x1b[0m\r\nfake line", kind="email", address="c@example.org",
            secrets=(), topics=None, locale="en", timezone="UTC", cron="0 7 * * *",
            skip_empty=False, next_fire_at=None,
        ), now=datetime.now(UTC))  # fmt: skip
    finally:
        await db.close()
    for args in (["subscriptions", "list"], ["subscriptions", "show", "1"]):
        code, out, err = await asyncio.to_thread(invoke, *args, env=env)
        assert code == 0, err
        assert "\x1b" not in out and "\r" not in out
        assert "red \\x1b[31mALERT\\x1b[0m\\r\\nfake line" in out
    code, out, err = await asyncio.to_thread(invoke, "subscriptions", "list", "--json", env=env)
    assert json.loads(out)[0]["name"] == "red \x1b[31mALERT\x1b[0m\r\nfake line"


# ── Help ──────────────────────────────────────────────────────────────────────────────────


def commands(group, path=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_help_shows_flags_as_flags_and_every_option_with_help_and_default(env) -> None:
    import typer.main

    root = typer.main.get_command(app)
    seen = 0
    for path, command in commands(root):
        code, out, err = invoke(*path, "--help", env=env)
        assert code == 0, (path, err)
        assert "<bool>" not in out and "│" not in out and "╭" not in out, (path, out)
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            seen += 1
            assert param.help, (path, param.name)
            flag = getattr(param, "is_flag", False)
            defaulted = param.default not in (None, False) and "[default:" in out
            chosen = "one of --to, --subscription or --all" in param.help  # no default
            required = param.required  # no default to show
            assert flag or defaulted or chosen or required or "default" in param.help, (
                path,
                param.name,
            )
            if flag:  # shown as a flag: its names, then its help, nothing in between
                names = " / ".join(param.opts + param.secondary_opts)
                if param.secondary_opts == [] and len(param.opts) == 2:
                    names = ", ".join(sorted(param.opts, key=len))
                (line,) = [x for x in out.splitlines() if x.strip().startswith(names + " ")]
                assert (
                    line.split(names, 1)[1].split()
                    == param.help.split()[: len(line.split(names, 1)[1].split())]
                ), line
    assert seen > 50
    code, out, err = invoke("run", "--help", env=env)
    assert "-v, --verbose  Log debug messages too." in out
    code, out, err = invoke("send", "--help", env=env)
    assert "Exits 1 if any delivery failed." in " ".join(out.split())


def test_root_help_names_the_data_directory_and_every_variable(env) -> None:
    code, out, err = invoke("--help", env=env)
    assert code == 0, err
    assert "Data directory (BRIEFING_HOME), where the database and .eml files go" in out
    assert f"\n  {env['BRIEFING_HOME']}\n" in out
    assert set(ENVIRONMENT) == {f"BRIEFING_{name.upper()}" for name in Settings.model_fields}
    for variable in ENVIRONMENT:
        assert variable in out


# ── Logs: one line per record, printed above a progress bar ───────────────────────────────


def test_a_log_record_is_one_line_whatever_it_holds(capsys) -> None:
    from bot.cli.common import ConsoleHandler, OneLineFormatter

    handler = ConsoleHandler()
    handler.setFormatter(OneLineFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("briefing.test.oneline")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("answer: %s", "HTTP 500: oops\nsecond line\r\n\x1b[2J")
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err
    assert err == "WARNING answer: HTTP 500: oops\\nsecond line\\r\\n\\x1b[2J\n"


def test_log_lines_are_printed_above_the_progress_bar(monkeypatch) -> None:
    from rich.console import Console
    from rich.progress import Progress

    from bot.cli import common

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=60, color_system=None)
    monkeypatch.setattr(common, "err_console", lambda: console)
    handler = common.ConsoleHandler()
    handler.setFormatter(common.OneLineFormatter("%(message)s"))
    log = logging.getLogger("briefing.test.progress")
    log.addHandler(handler)
    log.propagate = False
    try:
        with Progress(console=console, auto_refresh=False) as progress:
            task = progress.add_task("sending", total=2)
            progress.advance(task)
            progress.refresh()
            log.warning("delivery 7 failed for good: " + "x" * 80)
            progress.advance(task)
    finally:
        log.removeHandler(handler)
    printed = buffer.getvalue()
    before, after = printed.split("delivery 7 failed for good: ")
    # the bar's line is erased, the record printed whole on its line, the bar drawn below
    assert before.endswith("50% -:--:--\r\x1b[2K")
    assert after.startswith("x" * 80 + "\nsending ━")


# ── From anywhere: an empty directory, only BRIEFING_HOME set ─────────────────────────────


def test_the_cli_works_from_any_directory_and_leaves_it_untouched(tmp_path) -> None:
    here = tmp_path / "somewhere"
    here.mkdir()
    home = tmp_path / "data"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")}
    environment["BRIEFING_HOME"] = str(home)
    script = Path(sys.executable).with_name("briefing")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], cwd=here, env=environment, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    preview = run("preview", "--now", NOW)
    assert preview.returncode == 0, preview.stderr
    assert "Pokrovsk" in preview.stdout
    subscribed = run("subscribe", "email", "reader@example.org", "--json")
    assert subscribed.returncode == 0, subscribed.stderr
    listed = run("subscriptions", "list")
    assert listed.returncode == 0 and "reader@example.org" in listed.stdout, listed.stderr
    assert list(here.iterdir()) == []
    assert (home / "briefing.db").is_file()


def test_shipped_files_come_from_the_checkout_or_from_the_package(monkeypatch, tmp_path) -> None:
    from bot import settings
    from bot.digest.render import builtin_templates_dir
    from tests.conftest import ROOT

    assert settings.checkout() == ROOT
    assert settings.shipped_state_dir() == ROOT / "config" / "state"
    assert builtin_templates_dir() == ROOT / "templates"
    assert settings.default_home() == ROOT / "var"
    # installed from a wheel: site-packages/bot, whatever else sits in site-packages
    site = tmp_path / "site-packages"
    (site / "bot").mkdir(parents=True)
    (site / "templates").mkdir()
    (site / "config" / "state").mkdir(parents=True)
    monkeypatch.setattr(settings, "PACKAGE", site / "bot")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert settings.checkout() is None
    assert settings.shipped_state_dir() == site / "bot" / "_state"
    assert builtin_templates_dir() == site / "bot" / "_templates"
    assert settings.default_home() == tmp_path / "xdg" / "briefing-bot"
