"""Matrix: ``m.room.message`` events sent to a room through the client-server API.

The target is the homeserver's URL with the room id as its fragment, as in a matrix.to
link: ``https://matrix.example.org/#/!abcdef:example.org`` (``#/room/!abcdef:…``, as
Element writes it, works too). The access token is the
target's secret (``Authorization: Bearer``). Each part goes in one
``PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`` whose transaction id
is made from the delivery id and the part's number: a retried part reuses it, and the
homeserver answers with the event it already made instead of posting a second one.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from bot.errors import DeliveryError, TargetError
from bot.outputs.api import JSON_TYPE, ApiOutput, Call, answer_json, json_body, refused
from bot.outputs.base import Envelope, Message, Target
from bot.outputs.fit import fit_html, html_to_text, pack_text, utf8_size
from bot.outputs.network import answer_of
from bot.outputs.webhooks import chunks_of

# "!opaque:server"; from room version 12 a room id has no server part.
ROOM = re.compile(r"![^:/?#\s]+(?::[A-Za-z0-9.\-]+(?::[0-9]{1,5})?)?")
# The room id as a URL fragment: "#/!room:server", "#/room/!room:server" or "#!room:server".
_FRAGMENT = re.compile(r"(?:/room)?/?(!.*)")


def room_message(formatted: str) -> dict[str, Any]:
    """An ``m.text`` event's content: the HTML, its plain-text ``body``, and an empty
    ``m.mentions``, which tells clients that the event mentions no one (no @room)."""
    return {
        "msgtype": "m.text",
        "body": html_to_text(formatted),
        "format": "org.matrix.custom.html",
        "formatted_body": formatted.replace("\n", "<br>"),
        "m.mentions": {},
    }


class MatrixOutput(ApiOutput):
    """Matrix client-server API: HTML ``formatted_body`` with a plain ``body``; events kept
    under 64 KiB; ``M_LIMIT_EXCEEDED`` waits ``retry_after_ms``; a refused token or a room
    the account may not post to pauses the subscription."""

    name = "matrix"
    formats = ("chat_html",)
    CONTENT_BYTES = 60_000  # the event's content; the homeserver's envelope fits in the rest
    target_form = "https://HOMESERVER/#/!room:server"
    limits_kept = f"{CONTENT_BYTES:,} bytes of content an event (events under 64 KiB)"
    secrets_needed = "an access token (--token-env)"

    @classmethod
    def claims(cls, address: str) -> bool:
        """A URL whose fragment is a room id is a Matrix target."""
        try:
            fragment = urlsplit(address).fragment
        except ValueError:
            return False
        match = _FRAGMENT.fullmatch(fragment)
        return match is not None and bool(ROOM.fullmatch(match[1]))

    async def validate(self, target: Target) -> Target:
        if len(target.secrets) != 1:
            raise TargetError("a Matrix target needs the account's access token as its one secret")
        try:
            base, room = where(target.address)
        except ValueError as exc:
            raise TargetError(str(exc)) from None
        await self.context.policy.check(base)
        return Target(target.kind, f"{base}/#/{room}", target.secrets)

    def parts(self, message: Message) -> list[str]:
        limit = self.CONTENT_BYTES // 3  # the HTML twice (formatted and plain) and JSON escapes
        pieces = [
            piece
            for chunk in chunks_of(message.body("chat_html"))
            for piece in fit_html(f"<b>{chunk.title}</b>\n{chunk.body}".strip(), limit,
                                  measure=utf8_size)
        ]  # fmt: skip
        return pack_text(pieces, self.CONTENT_BYTES, measure=self._content_size, joiner="\n\n")

    @staticmethod
    def _content_size(formatted: str) -> int:
        return len(json_body(room_message(formatted)))

    def payload(self, part: Any) -> dict[str, Any]:
        return room_message(part)

    def call(self, target: Target, part: Any, *, index: int, envelope: Envelope) -> Call:
        base, room = where(target.address)
        txn = transaction_id(envelope.delivery_id, index)
        url = (
            f"{base}/_matrix/client/v3/rooms/{quote(room, safe='')}"
            f"/send/m.room.message/{quote(txn, safe='')}"
        )
        token = target.secrets[0] if target.secrets else ""
        headers = {**JSON_TYPE, "authorization": f"Bearer {token}"}
        return Call("PUT", url, json_body(room_message(part)), headers)

    def refusal(self, response: httpx.Response) -> DeliveryError | None:
        """Matrix errors are ``{"errcode", "error"}``; ``M_LIMIT_EXCEEDED`` carries
        ``retry_after_ms`` (https://spec.matrix.org/latest/client-server-api/#standard-error-response)."""
        body = answer_json(response)
        code = str(body.get("errcode") or "")
        said = str(body.get("error") or "")[:300] if code else answer_of(response)
        reason = f"HTTP {response.status_code}: {code}{': ' if code and said else ''}{said}"
        wait = body.get("retry_after_ms")
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait >= 0:
            return refused(response, reason, retry_in=wait / 1000)
        # M_FORBIDDEN: not in the room or not allowed to post; M_UNKNOWN_TOKEN: token revoked
        gone = code in ("M_FORBIDDEN", "M_UNKNOWN_TOKEN", "M_MISSING_TOKEN")
        return refused(response, reason, gone=gone)


def where(address: str) -> tuple[str, str]:
    """(homeserver URL, room id) of a target; ``ValueError`` naming what is wrong."""
    parts = urlsplit(address.strip())
    match = _FRAGMENT.fullmatch(parts.fragment)
    if match is None or not ROOM.fullmatch(match[1]):
        raise ValueError(
            "a Matrix target is the homeserver's URL and a room id (which starts with !, "
            "not a #room:server alias): https://matrix.example.org/#/!roomid:example.org"
        )
    base = urlunsplit(parts._replace(path=parts.path.rstrip("/"), query="", fragment=""))
    return base, match[1]


def transaction_id(delivery_id: str, part: int) -> str:
    """The same for every try of one part of one delivery, so that the homeserver can drop a
    repeat; different for every other part and delivery."""
    return f"briefing.{delivery_id}.{part}"
