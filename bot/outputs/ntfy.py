"""ntfy: push notifications published to a topic, as JSON with Markdown on.

The target is the topic's URL: ``https://ntfy.sh/briefing-7f3a`` or a topic on your own
server. An access token, when the topic needs one, is the target's secret (``Authorization:
Bearer``). Each part is published to the server's root URL as JSON (topic, title, tags,
``markdown: true``), so titles keep their accents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from bot.errors import DeliveryError, TargetError
from bot.outputs.api import JSON_TYPE, ApiOutput, Call, answer_json, json_body, refused
from bot.outputs.base import Envelope, Message, Target
from bot.outputs.fit import fit_text, pack_text, utf8_size
from bot.outputs.network import answer_of
from bot.outputs.webhooks import chunks_of

TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


@dataclass(frozen=True)
class Notification:
    title: str
    text: str


class NtfyOutput(ApiOutput):
    """ntfy publishing: Markdown, a title and a tag; messages kept under the server's
    4,096-byte limit; 429 retried; a refused token or topic pauses the subscription."""

    name = "ntfy"
    hosts = ("ntfy.sh",)
    MESSAGE_BYTES = 4000  # ntfy's default message-size-limit is 4,096 bytes
    TAGS = ("newspaper",)
    target_form = "https://ntfy.sh/TOPIC (or a topic on your server)"
    limits_kept = f"{MESSAGE_BYTES:,} bytes a message"
    secrets_needed = "an access token, if the topic needs one (--token-env)"

    @classmethod
    def claims(cls, address: str) -> bool:
        """A topic URL on a server named ntfy.… (https://ntfy.example.org/alerts) is an
        ntfy target."""
        try:
            parts = urlsplit(address.strip())
        except ValueError:
            return False
        return (
            parts.scheme in ("http", "https")
            and (parts.hostname or "").startswith("ntfy.")
            and not parts.query
            and TOPIC.fullmatch(parts.path.strip("/")) is not None
        )

    async def validate(self, target: Target) -> Target:
        if len(target.secrets) > 1:
            raise TargetError("an ntfy target takes at most one secret: an access token")
        base, topic = where(target.address)
        if not TOPIC.fullmatch(topic):
            raise TargetError(
                "an ntfy target is a topic URL such as https://ntfy.sh/your-topic "
                "(a topic is 1 to 64 letters, digits, - or _)"
            )
        await self.context.policy.check(base + "/")
        return Target(target.kind, f"{base}/{topic}", target.secrets)

    def parts(self, message: Message) -> list[Notification]:
        chunks = chunks_of(message.body("chat"))
        head, rest = chunks[0], chunks[1:]
        pieces = [head.body] if head.body else []
        for chunk in rest:
            text = f"**{chunk.title}**\n{chunk.body}".strip()
            pieces += fit_text(text, self.MESSAGE_BYTES, measure=utf8_size)
        texts = pack_text(pieces, self.MESSAGE_BYTES, measure=utf8_size, joiner="\n\n")
        title = _MARKDOWN_ESCAPE.sub(r"\1", head.title)
        if len(texts) == 1:
            return [Notification(title, texts[0])]
        return [Notification(f"{title} ({n}/{len(texts)})", t) for n, t in enumerate(texts, 1)]

    def payload(self, part: Any) -> dict[str, Any]:
        return {
            "title": part.title,
            "message": part.text,
            "tags": list(self.TAGS),
            "markdown": True,
        }

    def call(self, target: Target, part: Any, *, index: int, envelope: Envelope) -> Call:
        base, topic = where(target.address)
        headers = dict(JSON_TYPE)
        if target.secrets:
            headers["authorization"] = f"Bearer {target.secrets[0]}"
        return Call("POST", base + "/", json_body({"topic": topic, **self.payload(part)}), headers)

    def refusal(self, response: httpx.Response) -> DeliveryError | None:
        """ntfy errors are ``{"code", "http", "error", "link"}``
        (https://docs.ntfy.sh/publish/#limitations)."""
        body = answer_json(response)
        said = str(body.get("error") or "")[:300] or answer_of(response)
        reason = f"HTTP {response.status_code}: {said}"
        # 401/403: the token was refused, or the topic is reserved for others
        return refused(response, reason, gone=response.status_code in (401, 403))


def where(address: str) -> tuple[str, str]:
    """(the server's URL, the topic) of a topic URL."""
    parts = urlsplit(address.strip())
    path, _, topic = parts.path.rstrip("/").rpartition("/")
    return urlunsplit(parts._replace(path=path, query="", fragment="")), topic
