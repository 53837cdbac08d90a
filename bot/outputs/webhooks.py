"""Webhook outputs: signed generic JSON, Slack, Discord, Microsoft Teams and Mattermost.

Each builds its platform's payloads (split to its limits) and leaves the POST, the SSRF
guard and the status handling to ``WebhookOutput.send``.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from standardwebhooks.webhooks import Webhook

from bot.digest.render import CHUNK_BREAK
from bot.errors import DeliveryError, TargetError
from bot.outputs.base import Envelope, Message, Output, Receipt, Target
from bot.outputs.network import answer_of, post_json
from bot.outputs.split import pack, split_text
from bot.redact import scrub

JSON = dict[str, Any]
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh Standard Webhooks signing secret (``whsec_`` + 32 random bytes, base64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str) -> str:
    """Refuse a secret that is not ``whsec_`` + base64 of at least 24 bytes."""
    if not secret.startswith(SECRET_PREFIX):
        raise TargetError("a signing secret starts with 'whsec_'")
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TargetError("a signing secret is 'whsec_' followed by base64") from exc
    if len(raw) < 24:
        raise TargetError(f"a signing secret needs at least 24 random bytes (got {len(raw)})")
    return secret


@dataclass(frozen=True)
class Chunk:
    """One titled piece of a chat digest (a section, the sources…)."""

    title: str
    body: str


def chunks_of(rendered: str) -> list[Chunk]:
    """Cut a chat render at its chunk breaks; each chunk's first line is its title."""
    found = []
    for raw in rendered.split(CHUNK_BREAK):
        title, _, body = raw.strip("\n").partition("\n")
        if title.strip():
            found.append(Chunk(title.strip(), body.strip("\n")))
    return found


def split_chunks(chunks: list[Chunk], limit: int) -> list[Chunk]:
    """Chunks whose bodies fit in ``limit`` characters, long ones cut into several."""
    return [Chunk(c.title, body) for c in chunks for body in split_text(c.body, limit)]


def encoded(payload: JSON) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookOutput(Output):
    """An output that POSTs JSON payloads to a URL, in order, one per part."""

    formats: ClassVar[tuple[str, ...]] = ("chat",)
    hosts: ClassVar[tuple[str, ...]] = ()

    async def validate(self, target: Target) -> Target:
        await self.context.policy.check(target.address)
        return target

    def url(self, target: Target) -> str:
        return target.address

    def headers(self, target: Target, body: bytes, envelope: Envelope) -> dict[str, str]:
        return {}

    @abstractmethod
    def payloads(self, message: Message) -> list[JSON]:
        """The JSON bodies to POST, in order."""

    async def send(self, target: Target, message: Message, *, envelope: Envelope) -> Receipt:
        payloads: list[bytes] = message.memo.get(self.name) or message.memo.setdefault(
            self.name, [encoded(p) for p in self.payloads(message)]
        )
        response = None
        for index in range(envelope.first_part, len(payloads)):
            body = payloads[index]
            try:
                response = await post_json(
                    self.context.http,
                    self.url(target),
                    body,
                    headers=self.headers(target, body, envelope),
                    total_timeout=self.context.limits.total_timeout,
                )
            except DeliveryError as exc:
                exc.parts_done = index
                exc.reason = scrub(exc.reason, target.address)  # it may quote the URL
                exc.args = (exc.reason,)
                raise
        if response is None:
            return Receipt(status="nothing to send", parts=0)
        answer = scrub(answer_of(response), target.address)
        return Receipt(status=str(response.status_code), answer=answer, parts=len(payloads))


class GenericWebhookOutput(WebhookOutput):
    """Signed JSON per the Standard Webhooks specification.

    The body holds the Digest's JSON form and its text, markdown and HTML renders.
    """

    name = "generic"
    formats = ("text", "markdown", "html")
    target_form = "https://… (any receiver)"
    limits_kept = "one message"
    secrets_needed = "signing secret whsec_… (--secret; generated when not given)"

    async def validate(self, target: Target) -> Target:
        if not target.secrets:
            raise TargetError("a generic webhook needs a signing secret (whsec_…)")
        for secret in target.secrets:
            check_secret(secret)
        return await super().validate(target)

    def payloads(self, message: Message) -> list[JSON]:
        return [
            {
                "type": "briefing.digest",
                "schema_version": message.digest.schema_version,
                "digest": message.digest.model_dump(mode="json"),
                "text": message.body("text"),
                "markdown": message.body("markdown"),
                "html": message.body("html"),
            }
        ]

    def headers(self, target: Target, body: bytes, envelope: Envelope) -> dict[str, str]:
        now = datetime.now(UTC)
        data = body.decode()
        signatures = " ".join(
            Webhook(secret).sign(envelope.delivery_id, now, data) for secret in target.secrets
        )
        return {
            "webhook-id": envelope.delivery_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        }


class SlackOutput(WebhookOutput):
    """Slack incoming webhook: Block Kit with fallback text; 50 blocks, 3,000 per section."""

    name = "slack"
    formats = ("slack",)
    hosts = ("hooks.slack.com",)
    MAX_BLOCKS = 50
    SECTION_TEXT = 3000
    HEADER_TEXT = 150
    target_form = "https://hooks.slack.com/services/…"
    limits_kept = f"{MAX_BLOCKS} blocks, {SECTION_TEXT:,} characters a section"
    secrets_needed = "none (the URL is the secret)"

    def payloads(self, message: Message) -> list[JSON]:
        chunks = chunks_of(message.body("slack"))
        head, rest = chunks[0], chunks[1:]
        title = {"type": "plain_text", "text": _cut(head.title, self.HEADER_TEXT)}
        blocks: list[JSON] = [{"type": "header", "text": title}]
        if head.body:
            blocks += [_slack_section(t) for t in split_text(head.body, self.SECTION_TEXT)]
        for chunk in rest:
            blocks.append({"type": "divider"})
            text = f"*{chunk.title}*\n{chunk.body}".strip()
            blocks += [_slack_section(t) for t in split_text(text, self.SECTION_TEXT)]
        groups = pack(blocks, lambda group: len(group) <= self.MAX_BLOCKS)
        total = len(groups)
        return [
            {
                "text": _cut(head.title + (f" ({n}/{total})" if total > 1 else ""), 3000),
                "blocks": group,
            }
            for n, group in enumerate(groups, start=1)
        ]


def _slack_section(text: str) -> JSON:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _cut(text: str, limit: int) -> str:
    """Shorten a one-line title to ``limit`` characters at a word boundary."""
    if len(text) <= limit:
        return text
    return split_text(text, limit - 1, (" ",))[0] + "…"


class DiscordOutput(WebhookOutput):
    """Discord webhook: embeds (10 a message, 6,000 characters in all), ``?wait=true``."""

    name = "discord"
    hosts = ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com")
    CONTENT = 2000
    EMBEDS = 10
    DESCRIPTION = 4096
    TITLE = 256
    TOTAL = 6000
    target_form = "https://discord.com/api/webhooks/ID/TOKEN"
    limits_kept = f"content {CONTENT:,}; {EMBEDS} embeds, {TOTAL:,} characters in all"
    secrets_needed = "none (the URL is the secret)"
    COLOR = 0x1A3D6D

    def url(self, target: Target) -> str:
        parts = urlsplit(target.address)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "wait"] + [("wait", "true")]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def payloads(self, message: Message) -> list[JSON]:
        chunks = chunks_of(message.body("chat"))
        head, rest = chunks[0], chunks[1:]
        embeds = [
            {"title": _cut(c.title, self.TITLE), "description": c.body, "color": self.COLOR}
            for c in split_chunks(rest, self.DESCRIPTION)
        ]

        def size(group: list[JSON]) -> int:
            return sum(len(e["title"]) + len(e["description"]) for e in group)

        groups = pack(embeds, lambda g: len(g) <= self.EMBEDS and size(g) <= self.TOTAL)
        content = _cut(f"**{head.title}**\n{head.body}", self.CONTENT)
        return [
            {
                "content": content if n == 0 else "",
                "embeds": group,
                "allowed_mentions": {"parse": []},
            }
            for n, group in enumerate(groups or [[]])
        ]


class TeamsOutput(WebhookOutput):
    """Microsoft Teams Workflows webhook: one Adaptive Card a message, about 28 KB at most."""

    name = "teams"
    formats = ("teams",)
    hosts = ("webhook.office.com", "logic.azure.com", "powerplatform.com")
    MAX_BYTES = 27_000
    TEXT = 8_000
    target_form = "a Teams Workflows webhook URL (https://…)"
    limits_kept = "about 28 KB a message"
    secrets_needed = "none (the URL is the secret)"

    def payloads(self, message: Message) -> list[JSON]:
        elements: list[JSON] = []
        for chunk in split_chunks(chunks_of(message.body("teams")), self.TEXT):
            elements.append(
                {
                    "type": "TextBlock",
                    "text": chunk.title,
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                }
            )
            if chunk.body:
                elements.append({"type": "TextBlock", "text": chunk.body, "wrap": True})
        groups = pack(elements, lambda g: len(encoded(_teams_card(g))) <= self.MAX_BYTES)
        return [_teams_card(group) for group in groups]


def _teams_card(body: list[JSON]) -> JSON:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "msteams": {"width": "Full"},
                    "body": body,
                },
            }
        ],
    }


class MattermostOutput(WebhookOutput):
    """Mattermost incoming webhook: markdown text, 16,383 characters a post."""

    name = "mattermost"
    MAX_TEXT = 16_383
    target_form = "https://mattermost.example.org/hooks/…"
    limits_kept = f"{MAX_TEXT:,} characters a post"
    secrets_needed = "none (the URL is the secret)"

    def payloads(self, message: Message) -> list[JSON]:
        pieces = [
            f"#### {c.title}\n{c.body}".strip()
            for c in split_chunks(chunks_of(message.body("chat")), self.MAX_TEXT - 300)
        ]
        joined: Callable[[list[str]], str] = "\n\n".join
        groups = pack(pieces, lambda g: len(joined(g)) <= self.MAX_TEXT)
        return [{"text": joined(group)} for group in groups]
