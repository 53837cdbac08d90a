"""Zulip: messages sent to a channel (stream) and topic by a bot, through ``POST
/api/v1/messages`` (form-encoded, HTTP basic authentication).

The target names the organisation, the channel, the topic and the bot's email address:
``https://chat.example.org/?stream=briefing&topic=Daily%20briefing&email=briefing-bot@chat.example.org``
(``channel=`` works as well as ``stream=``). The bot's API key is the target's secret.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from bot.errors import DeliveryError, TargetError
from bot.outputs.api import ApiOutput, Call, answer_json, refused
from bot.outputs.base import Envelope, Message, Target
from bot.outputs.fit import fit_text, pack_text, utf8_size
from bot.outputs.network import answer_of
from bot.outputs.webhooks import chunks_of

FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}


class ZulipOutput(ApiOutput):
    """Zulip: Zulip's markdown, content under 10,000 bytes a message; 429 waits as told;
    an API key refused (or a deactivated bot) pauses the subscription."""

    name = "zulip"
    formats = ("zulip",)
    hosts = ("zulipchat.com",)
    CONTENT_BYTES = 10_000
    TOPIC = 60  # characters, Zulip's limit
    target_form = "https://ORG/?stream=NAME&topic=TOPIC&email=BOT_EMAIL"
    limits_kept = f"{CONTENT_BYTES:,} bytes a message, topics of {TOPIC} characters"
    secrets_needed = "the bot's API key (--key-env)"

    async def validate(self, target: Target) -> Target:
        if len(target.secrets) != 1:
            raise TargetError("a Zulip target needs the bot's API key as its one secret")
        site, where = _where(target.address)
        problem = (
            "a stream (or channel)" if not where.get("stream")
            else "a topic" if not where.get("topic")
            else "the bot's email" if "@" not in where.get("email", "")
            else None
        )  # fmt: skip
        if problem:
            raise TargetError(
                f"a Zulip target needs {problem}: https://chat.example.org/"
                "?stream=briefing&topic=Daily%20briefing&email=briefing-bot@chat.example.org"
            )
        if len(where["topic"]) > self.TOPIC:
            raise TargetError(f"a Zulip topic is at most {self.TOPIC} characters")
        await self.context.policy.check(site + "/")
        return Target(target.kind, f"{site}/?{urlencode(where)}", target.secrets)

    def secrets(self, target: Target) -> tuple[str, ...]:
        return (*target.secrets, _login(target.address, target.secrets))

    def parts(self, message: Message) -> list[str]:
        pieces = [
            piece
            for chunk in chunks_of(message.body("zulip"))
            for piece in fit_text(
                f"**{chunk.title}**\n{chunk.body}".strip(), self.CONTENT_BYTES, measure=utf8_size
            )
        ]
        return pack_text(pieces, self.CONTENT_BYTES, measure=utf8_size, joiner="\n\n")

    def payload(self, part: Any) -> dict[str, Any]:
        return {"type": "stream", "content": part}

    def call(self, target: Target, part: Any, *, index: int, envelope: Envelope) -> Call:
        site, where = _where(target.address)
        form = {**self.payload(part), "to": where["stream"], "topic": where["topic"]}
        headers = {**FORM_TYPE, "authorization": "Basic " + _login(target.address, target.secrets)}
        return Call("POST", f"{site}/api/v1/messages", urlencode(form).encode(), headers)

    def refusal(self, response: httpx.Response) -> DeliveryError | None:
        """Zulip errors are ``{"result": "error", "msg", "code"}``; 429 adds ``retry-after``
        (https://zulip.com/api/rest-error-handling)."""
        body = answer_json(response)
        said = str(body.get("msg") or "")[:300] or answer_of(response)
        code = str(body.get("code") or "")
        reason = f"HTTP {response.status_code}: {code + ': ' if code else ''}{said}"
        wait = body.get("retry-after")
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait >= 0:
            return refused(response, reason, retry_in=float(wait))
        return refused(response, reason, gone=response.status_code == 401)


def _where(address: str) -> tuple[str, dict[str, str]]:
    """(the organisation's URL, its stream, topic and email) of a target address."""
    parts = urlsplit(address.strip())
    query = dict(parse_qsl(parts.query))
    where = {
        "stream": query.get("stream") or query.get("channel") or "",
        "topic": query.get("topic", ""),
        "email": query.get("email", ""),
    }
    site = urlunsplit(parts._replace(path=parts.path.rstrip("/"), query="", fragment=""))
    return site, where


def _login(address: str, secrets: tuple[str, ...]) -> str:
    """The basic-authentication credentials (``email:key`` in base64) of a target."""
    email = _where(address)[1]["email"]
    return base64.b64encode(f"{email}:{secrets[0] if secrets else ''}".encode()).decode()
