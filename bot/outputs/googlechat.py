"""Google Chat: a space's incoming webhook, text messages in one thread per digest.

The target is the webhook URL Google Chat gives
(``https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…``); its key and token
are secrets, hidden from every error and answer. The parts of one digest carry the same
``thread.threadKey`` (with ``messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD``), so
the first starts a thread and the others reply in it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.errors import TargetError
from bot.outputs.api import JSON_TYPE, ApiOutput, Call, json_body
from bot.outputs.base import Envelope, Message, Target
from bot.outputs.fit import fit_text, pack_text
from bot.outputs.webhooks import chunks_of

_PATH = re.compile(r"/v1/spaces/[^/]+/messages\Z")  # under a prefix too (a test server)


class GoogleChatOutput(ApiOutput):
    """Google Chat incoming webhook: ``text`` in Chat's formatting (*bold*, _italic_,
    ``<url|text>`` links), 4,096 characters a message, one thread per digest."""

    name = "googlechat"
    formats = ("googlechat",)
    hosts = ("chat.googleapis.com",)
    TEXT = 4096
    target_form = "https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…"
    limits_kept = f"{TEXT:,} characters a message"
    secrets_needed = "none (key and token are in the URL)"

    async def validate(self, target: Target) -> Target:
        parts = urlsplit(target.address.strip())
        query = dict(parse_qsl(parts.query))
        if not _PATH.search(parts.path) or not (query.get("key") and query.get("token")):
            raise TargetError(
                "a Google Chat target is the space's webhook URL: "
                "https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…"
            )
        await self.context.policy.check(target.address.strip())
        return Target(target.kind, target.address.strip(), target.secrets)

    def secrets(self, target: Target) -> tuple[str, ...]:
        query = parse_qsl(urlsplit(target.address).query)
        return (*target.secrets, *(value for key, value in query if key in ("key", "token")))

    def parts(self, message: Message) -> list[str]:
        pieces = [
            piece
            for chunk in chunks_of(message.body("googlechat"))
            for piece in fit_text(f"*{chunk.title}*\n{chunk.body}".strip(), self.TEXT)
        ]
        return pack_text(pieces, self.TEXT, joiner="\n\n")

    def payload(self, part: Any) -> dict[str, Any]:
        return {"text": part}

    def call(self, target: Target, part: Any, *, index: int, envelope: Envelope) -> Call:
        parts = urlsplit(target.address)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "messageReplyOption"]
        query.append(("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"))
        url = urlunsplit(parts._replace(query=urlencode(query)))
        thread = {"threadKey": f"briefing-{envelope.delivery_id}"}
        return Call("POST", url, json_body({**self.payload(part), "thread": thread}), JSON_TYPE)
