"""The deployment files: docker-compose wiring and the Dockerfile."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import pytest
import yaml

from bot.settings import Settings
from bot.store.database import async_url
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def interpolated(value: object) -> str:
    """A compose value as compose passes it when the variable is not set (``${X:-default}``)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


def settings_variables() -> set[str]:
    return {f"BRIEFING_{name.upper()}" for name in Settings.model_fields}


def test_every_briefing_variable_set_by_compose_is_read_by_the_bot() -> None:
    environment = COMPOSE["services"]["bot"]["environment"]
    used = {name for name in environment if name.startswith("BRIEFING_")}
    assert used, "the bot service sets no BRIEFING_* variables"
    assert used <= settings_variables(), used - settings_variables()
    # and the values are ones the bot accepts (defaults as compose fills them in with no .env)
    Settings(
        _env_file=None,
        **{k.removeprefix("BRIEFING_").lower(): interpolated(v) for k, v in environment.items()},
    )  # type: ignore[arg-type]


def test_compose_wires_postgres_and_the_mail_catcher() -> None:
    services = COMPOSE["services"]
    bot = services["bot"]["environment"]
    url = async_url(bot["BRIEFING_DATABASE_URL"])
    postgres = services["postgres"]["environment"]
    assert url.host == "postgres" and url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"] and url.database == postgres["POSTGRES_DB"]
    assert bot["BRIEFING_SMTP_HOST"] == "mailpit" and bot["BRIEFING_SMTP_SECURITY"] == "none"
    assert set(services["bot"]["depends_on"]) == {"postgres", "mailpit"}
    assert all(
        dep["condition"] == "service_healthy" for dep in services["bot"]["depends_on"].values()
    )
    for name, service in services.items():
        assert "healthcheck" in service, name
    named = set(COMPOSE["volumes"])
    mounted = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert {"briefing-var", "postgres-data"} <= named and named <= mounted
    assert services["bot"]["build"] == "." and "8080:8080" in services["bot"]["ports"]


def test_dockerfile_installs_the_package_and_runs_the_bot() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for needed in [
        "COPY bot ./bot",
        "COPY templates ./templates",
        "COPY config ./config",
        "pip install .",
        'ENTRYPOINT ["briefing"]',
        'CMD ["run"]',
        "HEALTHCHECK",
        "USER briefing",
    ]:
        assert needed in dockerfile, needed


@pytest.mark.slow
def test_the_built_wheel_carries_templates_state_and_migrations(tmp_path) -> None:
    """Installed from a wheel, away from the checkout, the bot still finds all it ships."""
    import os
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")}
    env["PYTHONPATH"] = str(tmp_path / "site")
    env["BRIEFING_HOME"] = str(tmp_path / "data")  # else the user's data directory
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import bot, sys; from bot.cli import main; sys.argv = sys.argv[1:]; "
            "assert 'site' in bot.__file__, bot.__file__; main()",
            "briefing",
            "send",
            "--to",
            "a@example.org",
            "--now",
            "2025-12-02T18:00Z",
            "--locale",
            "fr",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    (mail,) = (tmp_path / "data" / "mail").glob("*.eml")
    assert b"Pokrovsk" in mail.read_bytes()
    assert (tmp_path / "data" / "briefing.db").exists() is False  # one-off sends need no database
    assert list(elsewhere.iterdir()) == []


def test_env_example_names_only_settings_the_bot_reads() -> None:
    import re

    text = (ROOT / "config" / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"\b(BRIEFING_[A-Z_]+)=", text))
    assert named == settings_variables(), named ^ settings_variables()


# ── Stopping, images, settings and the build context ─────────────────────────────────────

WIRING = {
    "BRIEFING_DATABASE_URL",
    "BRIEFING_SMTP_HOST",
    "BRIEFING_SMTP_PORT",
    "BRIEFING_SMTP_SECURITY",
    "BRIEFING_HTTP_HOST",
    "BRIEFING_HTTP_PORT",
}
DEFAULTED = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):-(?P<default>[^}]*)\}$")


def compose_seconds(duration: str) -> float:
    """A compose duration (``40s``, ``1m30s``, ``1h``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_the_bot_has_time_to_drain_before_docker_kills_it() -> None:
    from bot.worker import Worker

    drain = inspect.signature(Worker.run).parameters["grace"].default
    grace = compose_seconds(COMPOSE["services"]["bot"]["stop_grace_period"])
    # the drain, then records flushed and connections closed, before SIGKILL
    assert grace >= drain + 10, (grace, drain)


def test_images_are_pinned_to_a_version() -> None:
    images = [s["image"] for s in COMPOSE["services"].values() if "image" in s]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    images += re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert len(images) >= 3
    for image in images:
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag != "latest", image
        assert re.match(r"v?\d+\.\d+", tag), f"{image}: pin at least major.minor"


def test_the_env_file_reaches_the_bot_and_may_be_missing() -> None:
    bot = COMPOSE["services"]["bot"]
    assert {"path": ".env", "required": False} in bot["env_file"]
    for name, value in bot["environment"].items():
        if name in WIRING:
            # compose's wiring wins over .env: a local .env (127.0.0.1, SQLite…) cannot break it
            assert "$" not in str(value), name
        else:
            # the rest are defaults that the same variable in .env replaces
            found = DEFAULTED.match(str(value))
            assert found and found["name"] == name, (name, value)


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """The .dockerignore patterns as (excludes, regex), with Docker's matching rules:
    patterns are relative to the context root, ``*`` stays within a path segment, ``**``
    spans segments, ``!`` re-includes, and the last matching pattern wins."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        index = 0
        while index < len(pattern):
            if pattern.startswith("**/", index):
                regex, index = regex + "(?:.*/)?", index + 3
            elif pattern.startswith("**", index):
                regex, index = regex + ".*", index + 2
            elif pattern[index] == "*":
                regex, index = regex + "[^/]*", index + 1
            elif pattern[index] == "?":
                regex, index = regex + "[^/]", index + 1
            elif pattern[index] == "[":
                end = pattern.index("]", index)
                regex, index = regex + pattern[index : end + 1], end + 1
            else:
                regex, index = regex + re.escape(pattern[index]), index + 1
        rules.append((excludes, re.compile(regex + r"\Z")))
    return rules


def docker_ignores(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether ``path`` (relative, with ``/``) is left out of the build context."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for excludes, regex in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = excludes
    return ignored


def build_context() -> list[Path]:
    """The files ``docker build .`` sends, walking the checkout as Docker does."""
    rules = dockerignore_rules()
    sent = []
    for directory, subdirs, files in os.walk(ROOT):
        here = Path(directory).relative_to(ROOT)
        subdirs[:] = [d for d in subdirs if not docker_ignores((here / d).as_posix(), rules)]
        sent += [
            here / name for name in files if not docker_ignores((here / name).as_posix(), rules)
        ]
    return sent


def test_dockerignore_leaves_out_the_virtualenv_data_caches_and_secrets() -> None:
    rules = dockerignore_rules()
    for path in [
        ".venv/lib/python3.12/site-packages/httpx/__init__.py",
        "var/briefing.db",
        "var/mail/one.eml",
        ".git/HEAD",
        ".env",
        "config/.env",
        "bot/__pycache__/settings.cpython-312.pyc",
        "bot/state/__pycache__/model.cpython-312.pyc",
        "briefing_bot.egg-info/PKG-INFO",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.12/bot/settings.meta.json",
        ".ruff_cache/0.17.6/123",
        ".hypothesis/examples/abc",
        "tests/conftest.py",
    ]:
        assert docker_ignores(path, rules), path
    for path in ["pyproject.toml", "README.md", "bot/settings.py", "config/state/story.yaml"]:
        assert not docker_ignores(path, rules), path


def test_the_build_context_holds_what_the_dockerfile_copies_and_little_else() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = [
        source
        for line in re.findall(r"^COPY\s+(.+)$", dockerfile, re.MULTILINE)
        for source in line.split()[:-1]
    ]
    assert {"pyproject.toml", "README.md", "bot", "templates", "config"} <= set(copied)
    sent = {path.as_posix() for path in build_context()}
    for source in copied:
        wanted = [
            p.relative_to(ROOT).as_posix()
            for p in ([ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        ]
        assert wanted and set(wanted) <= sent, set(wanted) - sent
    size = sum((ROOT / path).stat().st_size for path in sent)
    assert size < 5_000_000, f"{size:,} bytes in the build context"
