"""Typed settings, read from the environment and from ``.env`` (the real environment wins)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

VAR_DIR = Path("var")


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
    mail_from: str = "Briefing <briefing@localhost>"
    mail_dir: Path = VAR_DIR / "mail"
    public_url: str | None = None
    api_token: SecretStr | None = None
    allow_private_targets: bool = False
    templates_dir: Path | None = None
    default_locale: Literal["en", "fr"] = "en"
    default_timezone: str = "UTC"
    catchup: float = Field(default=6 * 3600, description="seconds")
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: Path | None = None


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
