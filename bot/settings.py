"""Typed settings, read from the environment and from ``.env`` (the real environment wins)."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

VAR_DIR = Path("var")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(value: object) -> object:
    """``90``, ``90s``, ``30m``, ``6h``, ``3d`` (or an ISO 8601 duration) → timedelta."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return timedelta(seconds=float(match.group(1)) * unit)
    return value


class Settings(BaseSettings):
    """Everything the bot reads from ``BRIEFING_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="BRIEFING_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = f"sqlite+aiosqlite:///{VAR_DIR}/briefing.db"
    state_dir: Path = Path("config/state")
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: Path | None = None
    smtp_connections: int = Field(default=3, ge=1, le=50)
    mail_from: str = "Briefing <briefing@localhost>"
    mail_dir: Path = VAR_DIR / "mail"
    public_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    api_token: SecretStr | None = None
    allow_private_targets: bool = False
    templates_dir: Path | None = None
    default_locale: Literal["en", "fr"] = "en"
    default_timezone: str = "UTC"
    catchup: timedelta = Field(default=timedelta(hours=6))
    concurrency: int = Field(default=64, ge=1, le=4096)
    send_timeout: timedelta = Field(default=timedelta(minutes=5))
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: Path | None = None

    @field_validator("catchup", "send_timeout", mode="before")
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
