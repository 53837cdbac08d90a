"""Telegram: the Bot API's ``sendMessage`` to a chat or channel, in Telegram's HTML.

The target is a chat: ``@channelname`` or a numeric chat id, written as a URL on the Bot
API server (``https://api.telegram.org/@channelname``; another server, such as a local Bot
API server, by its own URL). The bot token is the target's secret; it sits in the path of
every request (``/bot<token>/sendMessage``), so it is hidden from every error and answer.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from bot.errors import DeliveryError, PermanentDeliveryError, TargetError
from bot.outputs.api import JSON_TYPE, ApiOutput, Call, answer_json, json_body, refused
from bot.outputs.base import Envelope, Message, Target
from bot.outputs.fit import fit_html, pack_text, utf16_size
from bot.outputs.network import answer_of
from bot.outputs.webhooks import chunks_of

API = "https://api.telegram.org"
CHAT = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}|-?[0-9]{1,20}")
TOKEN = re.compile(r"[0-9]{3,20}:[A-Za-z0-9_-]{20,}")


class TelegramOutput(ApiOutput):
    """Telegram Bot API: HTML parse mode (b, i, a), 4,096 characters a message, no link
    previews; 429 waits as told; a bot blocked, removed or refused pauses the subscription."""

    name = "telegram"
    formats = ("chat_html",)
    hosts = ("api.telegram.org",)
    TEXT = 4096  # after entity parsing; the HTML source, counted in UTF-16, is never shorter
    target_form = "@channel or a chat id (https://api.telegram.org/@channel)"
    limits_kept = f"{TEXT:,} characters a message"
    secrets_needed = "the bot token (--token-env)"

    @classmethod
    def claims(cls, address: str) -> bool:
        """A bare channel name (``@channelname``) is a Telegram target."""
        return address.startswith("@") and bool(CHAT.fullmatch(address.strip()))

    async def validate(self, target: Target) -> Target:
        if len(target.secrets) != 1:
            raise TargetError("a Telegram target needs the bot's token as its one secret")
        if not TOKEN.fullmatch(target.secrets[0]):
            raise TargetError("a Telegram bot token looks like 123456789:AAE… (from @BotFather)")
        address = target.address.strip()
        if CHAT.fullmatch(address):
            address = f"{API}/{address}"
        if re.search(r"/bot[0-9]+:", address):
            raise TargetError("give the bot token as the target's secret, not in its address")
        base, chat = where(address)
        if not CHAT.fullmatch(chat):
            raise TargetError(
                "a Telegram target is a chat: @channelname or a numeric chat id "
                f"(such as {API}/@channelname)"
            )
        await self.context.policy.check(base)
        return Target(target.kind, f"{base}/{chat}", target.secrets)

    def parts(self, message: Message) -> list[str]:
        blocks = [
            f"<b>{chunk.title}</b>\n{chunk.body}".strip()
            for chunk in chunks_of(message.body("chat_html"))
        ]
        pieces = [p for block in blocks for p in fit_html(block, self.TEXT, measure=utf16_size)]
        return pack_text(pieces, self.TEXT, measure=utf16_size, joiner="\n\n")

    def payload(self, part: Any) -> dict[str, Any]:
        return {"text": part, "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}

    def call(self, target: Target, part: Any, *, index: int, envelope: Envelope) -> Call:
        base, chat = where(target.address)
        payload = {"chat_id": int(chat) if chat.lstrip("-").isdigit() else chat}
        url = f"{base}/bot{target.secrets[0] if target.secrets else ''}/sendMessage"
        return Call("POST", url, json_body({**payload, **self.payload(part)}), JSON_TYPE)

    def refusal(self, response: httpx.Response) -> DeliveryError | None:
        """Telegram answers ``{"ok": false, "error_code", "description", "parameters"}``;
        ``parameters.retry_after`` after 429, ``migrate_to_chat_id`` when a group became a
        supergroup (https://core.telegram.org/bots/api#making-requests)."""
        body = answer_json(response)
        status = response.status_code
        description = str(body.get("description") or answer_of(response))[:300]
        parameters = body.get("parameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        reason = f"HTTP {status}: {description}"
        moved = parameters.get("migrate_to_chat_id")
        if moved is not None:
            return PermanentDeliveryError(
                f"{reason} (the group is now chat {moved}: subscribe that chat id instead)",
                status=status,
            )
        wait = parameters.get("retry_after")
        if status in (401, 403):  # token revoked; bot blocked, kicked or not a member
            return refused(response, reason, gone=True)
        return refused(response, reason, retry_in=_seconds(wait))


def where(address: str) -> tuple[str, str]:
    """(the Bot API server's URL, the chat) of a target address."""
    parts = urlsplit(address)
    path, _, chat = parts.path.rstrip("/").rpartition("/")
    return urlunsplit(parts._replace(path=path, query="", fragment="")), unquote(chat)


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None
