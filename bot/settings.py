"""Typed settings, read from the environment and from ``.env`` (the real environment wins)."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

PACKAGE = Path(__file__).resolve().parent
APP_NAME = "briefing-bot"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(value: object) -> object:
    """``90``, ``90s``, ``30m``, ``6h``, ``3d`` (or an ISO 8601 duration) → timedelta."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return timedelta(seconds=float(match.group(1)) * unit)
    return value


def checkout() -> Path | None:
    """The source checkout the package runs from (the working tree or an editable
    install), or None when it runs from an installed wheel."""
    root = PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "config" / "state").is_dir():
        return root
    return None


def default_home() -> Path:
    """The data directory when ``BRIEFING_HOME`` is not set: the checkout's ``var/`` when
    the package runs from a checkout, else the platform's user data directory."""
    root = checkout()
    if root is not None:
        return root / "var"
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def shipped_state_dir() -> Path:
    """The state files that come with the bot: ``config/state`` in a checkout, the copy
    packed into the wheel (``bot/_state``) otherwise."""
    root = checkout()
    return root / "config" / "state" if root is not None else PACKAGE / "_state"


class Settings(BaseSettings):
    """Everything the bot reads from ``BRIEFING_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="BRIEFING_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(default_factory=default_home)
    database_url: str = ""  # default: SQLite in ``home`` (filled in below)
    state_dir: Path | None = None  # default: the state shipped with the bot
    feeds_file: Path | None = None  # default: the shipped config/feeds.yaml
    topics_file: Path | None = None  # default: the shipped config/topics.yaml
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: Path | None = None
    smtp_connections: int = Field(default=3, ge=1, le=50)
    mail_from: str = "Briefing <briefing@localhost>"
    mail_dir: Path = Path()  # default: ``home``/mail (filled in below)
    public_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    api_token: SecretStr | None = None
    metrics_token: SecretStr | None = None
    secret_key: SecretStr | None = None  # Fernet keys, comma-separated (bot.crypto)
    allow_private_targets: bool = False
    egress_allowlist: str | None = None  # hosts and CIDRs (bot.outputs.network.EgressAllowlist)
    templates_dir: Path | None = None
    default_locale: Literal["en", "fr"] = "en"
    default_timezone: str = "UTC"
    catchup: timedelta = Field(default=timedelta(hours=6))
    concurrency: int = Field(default=64, ge=1, le=4096)
    send_timeout: timedelta = Field(default=timedelta(minutes=5))
    stale_after: timedelta = Field(default=timedelta(days=3))
    editor: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: Path | None = None
    # the admin page and public sign-up (bot.web.admin, bot.web.signup)
    trusted_proxies: str = ""  # hosts or CIDRs, comma-separated, whose X-Forwarded-For counts
    signup_per_address: int = Field(default=3, ge=1)  # confirmation emails an address a day
    signup_per_client: int = Field(default=10, ge=1)  # sign-ups a client (IP) an hour

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for entry in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _in_home(cls, values: Any) -> Any:
        """Put the database and the mail directory in the data directory unless set."""
        if not isinstance(values, dict):
            return values
        home = values.get("home")
        base = (
            Path(home).expanduser().absolute()
            if isinstance(home, str | Path) and str(home)
            else default_home()
        )
        values = {**values, "home": base}
        if not values.get("database_url"):
            values["database_url"] = f"sqlite+aiosqlite:///{base / 'briefing.db'}"
        if not values.get("mail_dir"):
            values["mail_dir"] = base / "mail"
        return values

    @field_validator("egress_allowlist")
    @classmethod
    def _allowlist(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from bot.outputs.network import EgressAllowlist

        EgressAllowlist.parse(value)  # a ValueError names the entry
        return value

    @field_validator("catchup", "send_timeout", "stale_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; raise ``ConfigError`` naming the bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"BRIEFING_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
