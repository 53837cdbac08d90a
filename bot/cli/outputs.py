"""``briefing outputs`` (the output kinds this installation has) and the chat platforms'
own subscribe commands: ``briefing subscribe telegram|matrix|googlechat|ntfy|zulip|apprise``.

Tokens and keys are read from an environment variable named on the command line
(``--token-env VAR``), never from the command line itself, where they would stay in the
shell's history and show in the process list.
"""

from __future__ import annotations

import os
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from bot.cli.common import emit, fail, table
from bot.cli.subscriptions import (
    AsJson,
    At,
    Cron,
    Locale,
    Name,
    SkipEmpty,
    Timezone,
    Topics,
    create,
)
from bot.outputs.registry import output_classes


def outputs(as_json: AsJson = False) -> None:
    """List the output kinds, plugins included: the target's form, the limits kept, the
    secrets a target needs, the hosts the kind is inferred from (and, with --json, what
    each sends and the renders it needs)."""
    rows: list[dict[str, Any]] = []
    for name, cls in sorted(output_classes().items()):
        rows.append(
            {
                "kind": name,
                "target": getattr(cls, "target_form", ""),
                "limits": getattr(cls, "limits_kept", ""),
                "secrets": getattr(cls, "secrets_needed", ""),
                "formats": list(cls.formats),
                "hosts": list(getattr(cls, "hosts", ())),
                "claims": _first_line(getattr(cls, "claims", None)),
                "module": cls.__module__,
                "about": _first_line(cls),
            }
        )
    columns = ("kind", "target", "limits", "secrets")
    inferred = ["; ".join(filter(None, [", ".join(r["hosts"]), r["claims"]])) for r in rows]
    text = table(
        [*columns, "inferred from"],
        [
            [*(r[c] or "—" for c in columns), found or "—"]
            for r, found in zip(rows, inferred, strict=True)
        ],
    )
    emit(rows, as_json=as_json, text=text)


def _first_line(thing: object) -> str:
    """The first paragraph of ``thing``'s docstring, on one line ("" without one)."""
    doc = (getattr(thing, "__doc__", None) or "").strip().split("\n\n")[0]
    return " ".join(doc.replace("``", "").split())


def from_environment(variable: str, option: str, what: str) -> str:
    """The value of ``variable``; a usage error naming ``option`` when it is unset."""
    value = os.environ.get(variable, "").strip()
    if not value:
        fail(f"{option} {variable}: the variable is not set (it should hold {what})")
    return value


TokenEnv = Annotated[
    str,
    typer.Option(
        "--token-env",
        metavar="VAR",
        help="Environment variable holding the token.",
    ),
]


def _subscribe(kind: str, address: str, secrets: tuple[str, ...], options: dict[str, Any]) -> None:
    create(kind, address, secrets, generated=None, **options)


def subscribe_telegram(
    chat: Annotated[
        str,
        typer.Option(
            "--chat",
            metavar="@CHANNEL|ID",
            help="The channel (@name) or chat id.",
        ),
    ],
    token_env: TokenEnv,
    api: Annotated[
        str, typer.Option("--api", metavar="URL", help="The Bot API server.")
    ] = "https://api.telegram.org",
    topics: Topics = None,
    locale: Locale = None,
    timezone: Timezone = None,
    at: At = None,
    cron: Cron = None,
    name: Name = None,
    skip_empty: SkipEmpty = False,
    as_json: AsJson = False,
) -> None:
    """Subscribe a Telegram channel or chat (the bot must be a member, an admin of a channel)."""
    token = from_environment(token_env, "--token-env", "the bot token from @BotFather")
    _subscribe("telegram", f"{api.rstrip('/')}/{chat.strip()}", (token,), locals_of(locals()))


def subscribe_matrix(
    homeserver: Annotated[
        str,
        typer.Option("--homeserver", metavar="URL", help="The homeserver's URL."),
    ],
    room: Annotated[
        str,
        typer.Option("--room", metavar="!ROOM:SERVER", help="The room id."),
    ],
    token_env: TokenEnv,
    topics: Topics = None,
    locale: Locale = None,
    timezone: Timezone = None,
    at: At = None,
    cron: Cron = None,
    name: Name = None,
    skip_empty: SkipEmpty = False,
    as_json: AsJson = False,
) -> None:
    """Subscribe a Matrix room (the account whose access token is given must be in it)."""
    token = from_environment(token_env, "--token-env", "the account's access token")
    address = f"{homeserver.rstrip('/')}/#/{room.strip()}"
    _subscribe("matrix", address, (token,), locals_of(locals()))


def subscribe_google_chat(
    url_env: Annotated[
        str,
        typer.Option(
            "--url-env",
            metavar="VAR",
            help="Environment variable holding the webhook URL.",
        ),
    ],
    topics: Topics = None,
    locale: Locale = None,
    timezone: Timezone = None,
    at: At = None,
    cron: Cron = None,
    name: Name = None,
    skip_empty: SkipEmpty = False,
    as_json: AsJson = False,
) -> None:
    """Subscribe a Google Chat space through its incoming webhook."""
    url = from_environment(url_env, "--url-env", "the space's webhook URL")
    _subscribe("googlechat", url, (), locals_of(locals()))


def subscribe_ntfy(
    topic_url: Annotated[str, typer.Argument(metavar="TOPIC_URL", help="https://ntfy.sh/TOPIC")],
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            metavar="VAR",
            help="Environment variable holding an access token (default: none).",
        ),
    ] = None,
    topics: Topics = None,
    locale: Locale = None,
    timezone: Timezone = None,
    at: At = None,
    cron: Cron = None,
    name: Name = None,
    skip_empty: SkipEmpty = False,
    as_json: AsJson = False,
) -> None:
    """Subscribe an ntfy topic (on ntfy.sh or your own server)."""
    secrets = (from_environment(token_env, "--token-env", "an access token"),) if token_env else ()
    _subscribe("ntfy", topic_url, secrets, locals_of(locals()))


def subscribe_zulip(
    site: Annotated[
        str,
        typer.Option("--site", metavar="URL", help="The organisation's URL."),
    ],
    stream: Annotated[str, typer.Option("--stream", metavar="NAME", help="The channel.")],
    topic: Annotated[str, typer.Option("--topic", metavar="TOPIC", help="The topic.")],
    email: Annotated[
        str,
        typer.Option("--email", metavar="ADDRESS", help="The bot's email."),
    ],
    key_env: Annotated[
        str,
        typer.Option(
            "--key-env",
            metavar="VAR",
            help="Environment variable holding the bot's API key.",
        ),
    ],
    topics: Topics = None,
    locale: Locale = None,
    timezone: Timezone = None,
    at: At = None,
    cron: Cron = None,
    name: Name = None,
    skip_empty: SkipEmpty = False,
    as_json: AsJson = False,
) -> None:
    """Subscribe a Zulip channel and topic, posted to by a bot."""
    key = from_environment(key_env, "--key-env", "the bot's API key")
    query = urlencode({"stream": stream, "topic": topic, "email": email})
    _subscribe("zulip", f"{site.rstrip('/')}/?{query}", (key,), locals_of(locals()))


def subscribe_apprise(
    url_env: Annotated[
        str,
        typer.Option(
            "--url-env",
            metavar="VAR",
            help="Environment variable holding the Apprise URL.",
        ),
    ],
    topics: Topics = None,
    locale: Locale = None,
    timezone: Timezone = None,
    at: At = None,
    cron: Cron = None,
    name: Name = None,
    skip_empty: SkipEmpty = False,
    as_json: AsJson = False,
) -> None:
    """Subscribe any service Apprise knows (needs pip install 'briefing-bot[apprise]')."""
    url = from_environment(url_env, "--url-env", "an Apprise URL such as tgram://…")
    _subscribe("apprise", url, (), locals_of(locals()))


SCHEDULE = ("topics", "locale", "timezone", "at", "cron", "name", "skip_empty", "as_json")


def locals_of(values: dict[str, Any]) -> dict[str, Any]:
    """The reader and schedule options among a command's arguments, for ``create``."""
    return {key: values[key] for key in SCHEDULE}


def register(app: typer.Typer, subscribe: typer.Typer) -> None:
    """Add ``outputs`` to ``app`` and the platforms' commands to ``subscribe``."""
    app.command("outputs")(outputs)
    for name, command in (
        ("telegram", subscribe_telegram),
        ("matrix", subscribe_matrix),
        ("googlechat", subscribe_google_chat),
        ("ntfy", subscribe_ntfy),
        ("zulip", subscribe_zulip),
        ("apprise", subscribe_apprise),
    ):
        subscribe.command(name)(command)
