"""``briefing secrets …``: keys for encryption at rest, and re-encrypting what is stored."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.common import emit, settings, with_database
from bot.crypto import SETTING, Keyring, new_key
from bot.errors import ConfigError
from bot.store import subscriptions as subs

secrets_app = typer.Typer(
    help="Encrypt webhook URLs and signing secrets at rest (BRIEFING_SECRET_KEY).",
    no_args_is_help=True,
)


@secrets_app.command("key")
def secrets_key() -> None:
    """Print a new key for BRIEFING_SECRET_KEY. To change keys, put the new one first
    (BRIEFING_SECRET_KEY=new,old), run 'briefing secrets rotate', then drop the old one."""
    typer.echo(new_key())


@secrets_app.command("rotate")
def secrets_rotate(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Encrypt every stored webhook URL and signing secret under the first key of
    BRIEFING_SECRET_KEY (those stored in the clear included); print how many
    subscriptions changed."""
    if not Keyring.from_setting(settings().secret_key).enabled:
        raise ConfigError(f"{SETTING} is not set: make a key with 'briefing secrets key'")
    changed = with_database(subs.reseal)
    emit(
        {"changed": changed},
        as_json=as_json,
        text=f"{changed} subscription(s) re-encrypted under the first key of {SETTING}",
    )
