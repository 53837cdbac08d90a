"""The deployment files: docker-compose wiring and the Dockerfile."""

from __future__ import annotations

import yaml

from bot.settings import Settings
from bot.store.database import async_url
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def settings_variables() -> set[str]:
    return {f"BRIEFING_{name.upper()}" for name in Settings.model_fields}


def test_every_briefing_variable_set_by_compose_is_read_by_the_bot() -> None:
    environment = COMPOSE["services"]["bot"]["environment"]
    used = {name for name in environment if name.startswith("BRIEFING_")}
    assert used, "the bot service sets no BRIEFING_* variables"
    assert used <= settings_variables(), used - settings_variables()
    # and the values are ones the bot accepts
    Settings(
        _env_file=None, **{k.removeprefix("BRIEFING_").lower(): v for k, v in environment.items()}
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
    (mail,) = (elsewhere / "var" / "mail").glob("*.eml")
    assert b"Pokrovsk" in mail.read_bytes()
    assert (elsewhere / "var" / "briefing.db").exists() is False  # one-off sends need no database


def test_env_example_names_only_settings_the_bot_reads() -> None:
    import re

    text = (ROOT / "config" / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"\b(BRIEFING_[A-Z_]+)=", text))
    assert named == settings_variables(), named ^ settings_variables()
