"""Local stand-ins for chat platforms' APIs on 127.0.0.1, answering as each platform's
documentation says (sources in each docstring), and checking requests the way the
platform would: limits, authentication, markup it would refuse.

``PlatformReceiver`` is the tests' ``HttpReceiver`` where a script also answers the paths
under it (a Telegram target under ``/ok`` is called at ``/ok/bot<token>/sendMessage``), and
where a request nothing scripts gets the answer its platform would give.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from aiohttp import web

from bot.outputs import Target
from bot.outputs.webhooks import new_secret
from tests.receivers import Behaviour, HttpReceiver, Received, reply

_ids = itertools.count(1)


def answer_json(status: int, data: Any, headers: dict[str, str] | None = None) -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        return web.json_response(data, status=status, headers=headers)

    return behaviour


# ── Telegram Bot API ─────────────────────────────────────────────────────────────────────
# https://core.telegram.org/bots/api#making-requests (answer shape, ResponseParameters),
# https://core.telegram.org/bots/api#sendmessage (1-4096 characters after entities parsing),
# https://core.telegram.org/bots/api#html-style (tags, entities).

TELEGRAM_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "tg-emoji", "code", "pre", "blockquote",
}  # fmt: skip
TELEGRAM_ENTITIES = {"lt", "gt", "amp", "quot"}


def telegram_error(status: int, description: str, **parameters: Any) -> Behaviour:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return answer_json(status, body)


class _TelegramHtml(HTMLParser):
    """Telegram's HTML parse mode: the supported tags only, closed in order; the four named
    entities and numeric ones. Collects the text as Telegram counts it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.text = ""
        self.problem = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problem = self.problem or f'Unsupported start tag "{tag}"'
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problem = self.problem or f'Unmatched end tag "{tag}"'

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            self.problem = self.problem or "Unexpected < or >"
        self.text += data

    def handle_entityref(self, name: str) -> None:
        if name not in TELEGRAM_ENTITIES:
            self.problem = self.problem or f"Unsupported entity &{name};"
        self.text += "x"

    def handle_charref(self, name: str) -> None:
        self.text += "x"


def telegram_api(token: str) -> Behaviour:
    """``sendMessage`` as the Bot API answers it."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        if not request.path.endswith(f"/bot{token}/sendMessage"):
            return await telegram_error(404, "Not Found")(request)
        body = await request.json()
        text = body.get("text", "")
        if body.get("parse_mode") == "HTML":
            parser = _TelegramHtml()
            parser.feed(text)
            parser.close()
            if parser.problem or parser.open:
                problem = parser.problem or f"Can't find end tag corresponding to {parser.open[-1]}"
                return await telegram_error(400, f"Bad Request: can't parse entities: {problem}")(
                    request
                )
            text = parser.text
        if not 1 <= len(text.encode("utf-16-le")) // 2 <= 4096:
            return await telegram_error(400, "Bad Request: message is too long")(request)
        chat = body.get("chat_id")
        result = {
            "message_id": next(_ids),
            "date": 1764698400,
            "chat": {"id": chat if isinstance(chat, int) else -1001, "type": "channel"},
            "text": text,
        }
        return web.json_response({"ok": True, "result": result})

    return behaviour


# ── Matrix client-server API ─────────────────────────────────────────────────────────────
# https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid
# (transaction ids: the same txnId with the same access token gives back the same event),
# https://spec.matrix.org/latest/client-server-api/#standard-error-response,
# https://spec.matrix.org/latest/client-server-api/#rate-limiting (M_LIMIT_EXCEEDED with
# retry_after_ms, deprecated in v1.10 for a Retry-After header),
# https://spec.matrix.org/latest/client-server-api/#size-limits (65,536 bytes an event).


def matrix_error(status: int, errcode: str, error: str, **extra: Any) -> Behaviour:
    return answer_json(status, {"errcode": errcode, "error": error, **extra})


@dataclass
class Homeserver:
    """Rooms and their timelines, as a homeserver keeps them: a repeated transaction id
    (per access token) returns the event it made the first time and adds nothing.

    ``fail_after_store`` makes the next that many new events be stored and then answered
    with a 500, as when a homeserver fails between storing an event and answering.
    """

    token: str
    timelines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    transactions: dict[tuple[str, str], str] = field(default_factory=dict)
    fail_after_store: int = 0

    def shown(self, room: str) -> list[str]:
        """What a client displays in ``room``: each event's plain body, in order."""
        return [event["content"]["body"] for event in self.timelines.get(room, [])]

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return await matrix_error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")(
                request
            )
        segments = request.rel_url.raw_path.split("/")
        if request.method != "PUT" or "send" not in segments[:-2]:
            return await matrix_error(404, "M_UNRECOGNIZED", "Unrecognized request")(request)
        at = len(segments) - 1 - segments[::-1].index("send")
        room, event_type, txn = (unquote(s) for s in (segments[at - 1], *segments[at + 1 :]))
        raw = await request.read()
        if len(raw) > 65_536:
            return await matrix_error(413, "M_TOO_LARGE", "event too large")(request)
        key = (self.token, txn)
        if key not in self.transactions:
            event_id = f"${next(_ids)}"
            self.transactions[key] = event_id
            self.timelines.setdefault(room, []).append(
                {"event_id": event_id, "type": event_type, "content": json.loads(raw)}
            )
            if self.fail_after_store > 0:
                self.fail_after_store -= 1
                return web.json_response({"errcode": "M_UNKNOWN", "error": "Internal error"},
                                         status=500)  # fmt: skip
        return web.json_response({"event_id": self.transactions[key]})


# ── Google Chat incoming webhooks ────────────────────────────────────────────────────────
# https://developers.google.com/workspace/chat/quickstart/webhooks,
# https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages/create
# (messageReplyOption, thread.threadKey),
# https://developers.google.com/workspace/chat/create-messages ("The maximum message size
# (including any text or cards) is 32,000 bytes"), https://cloud.google.com/apis/design/errors
# (error shape). The 4,096 characters of `text` are not in the reference; the answer to a
# longer one is as reported in https://github.com/mr-karan/calert/issues/17 and
# https://github.com/cloudflare/GHC-Errbot/issues/10 (400 INVALID_ARGUMENT).


def google_error(status: int, code: str, message: str) -> Behaviour:
    return answer_json(status, {"error": {"code": status, "message": message, "status": code}})


@dataclass
class GoogleChatSpace:
    """One space's webhook: messages in threads by ``threadKey`` when the request asks to
    reply (``messageReplyOption``), a new thread otherwise."""

    key: str
    token: str
    threads: dict[str, list[str]] = field(default_factory=dict)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("key") != self.key or request.query.get("token") != self.token:
            return await google_error(401, "UNAUTHENTICATED", "Invalid webhook token")(request)
        body = await request.json()
        text = body.get("text", "")
        if len(text) > 4096:
            return await google_error(
                400, "INVALID_ARGUMENT", "Message is longer than 4096 characters"
            )(request)
        if len(await request.read()) > 32_000:
            return await google_error(400, "INVALID_ARGUMENT", "Message too large")(request)
        thread_key = (body.get("thread") or {}).get("threadKey")
        replying = request.query.get("messageReplyOption", "").startswith("REPLY_MESSAGE")
        thread = thread_key if replying and thread_key else f"auto-{next(_ids)}"
        self.threads.setdefault(thread, []).append(text)
        number = next(_ids)
        return web.json_response(
            {
                "name": f"spaces/AAAA/messages/{number}",
                "text": text,
                "thread": {"name": f"spaces/AAAA/threads/{thread}", "threadKey": thread_key},
            }
        )


# ── ntfy ─────────────────────────────────────────────────────────────────────────────────
# https://docs.ntfy.sh/publish/#publish-as-json (POST to the root URL; topic, message,
# title, tags, markdown), https://docs.ntfy.sh/publish/#limitations ("Each message can be
# up to 4,096 bytes long. Longer messages are treated as attachments"; a title over 1 KB is
# refused with 400), https://docs.ntfy.sh/publish/#access-tokens, and the server's
# server/errors.go for the error codes ({"code", "http", "error", "link"}).


def ntfy_error(status: int, code: int, error: str) -> Behaviour:
    link = "https://ntfy.sh/docs/publish/#limitations"
    return answer_json(status, {"code": code, "http": status, "error": error, "link": link})


def ntfy_api(token: str | None = None, shown: list[dict[str, Any]] | None = None) -> Behaviour:
    """Publishing as ntfy answers it; ``shown`` collects the notifications subscribers get
    (a message too long for one becomes a file to download, not text)."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
            return await ntfy_error(401, 40101, "unauthorized")(request)
        body = await request.json()
        if not isinstance(body, dict) or not body.get("topic"):
            return await ntfy_error(400, 40009, "invalid request: topic invalid")(request)
        if len(str(body.get("title", "")).encode()) > 1024:
            return await ntfy_error(400, 40057, "invalid request: title too long")(request)
        message, attachment = str(body.get("message", "")), None
        if len(message.encode()) > 4096:
            attachment = {"name": "attachment.txt", "type": "text/plain; charset=utf-8"}
            message = "You received a file: attachment.txt"
        notification = {
            "id": f"m{next(_ids)}",
            "time": 1764698400,
            "expires": 1764741600,
            "event": "message",
            "topic": body["topic"],
            "title": body.get("title"),
            "message": message,
            "tags": body.get("tags"),
            "content_type": "text/markdown" if body.get("markdown") else None,
            **({"attachment": attachment} if attachment else {}),
        }
        if shown is not None:
            shown.append(notification)
        return web.json_response(notification)

    return behaviour


# ── Zulip ────────────────────────────────────────────────────────────────────────────────
# https://zulip.com/api/send-message (form fields; content of 10,000 at most, topics of 60),
# https://zulip.com/api/http-headers and https://zulip.com/api/rest-error-handling (errors,
# RATE_LIMIT_HIT with retry-after). A longer content or topic is not refused but cut short
# (zerver/lib/message.py: normalize_body adds "[message truncated]", truncate_topic "...").

ZULIP_CONTENT, ZULIP_TOPIC = 10_000, 60  # code points (Python's len), as the server counts


def zulip_error(status: int, code: str, msg: str, **extra: Any) -> Behaviour:
    return answer_json(status, {"result": "error", "msg": msg, "code": code, **extra})


def zulip_api(email: str, key: str, shown: list[dict[str, str]] | None = None) -> Behaviour:
    """``POST /api/v1/messages`` as Zulip answers it; ``shown`` collects the messages as
    the channel shows them (cut short where Zulip cuts them)."""
    expected = "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()

    def cut(text: str, limit: int, note: str) -> str:
        return text[: limit - len(note)] + note if len(text) > limit else text

    async def behaviour(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != expected:
            return await zulip_error(401, "UNAUTHORIZED", "Invalid API key")(request)
        form = dict(parse_qsl((await request.read()).decode()))
        if form.get("type") not in ("stream", "channel") or not form.get("to"):
            return await zulip_error(400, "BAD_REQUEST", "Invalid message type")(request)
        content = form.get("content", "").rstrip()
        if not content:
            return await zulip_error(400, "BAD_REQUEST", "Message must not be empty")(request)
        if shown is not None:
            shown.append(
                {
                    "to": form["to"],
                    "topic": cut(form.get("topic", ""), ZULIP_TOPIC, "..."),
                    "content": cut(content, ZULIP_CONTENT, "\n[message truncated]"),
                }
            )
        return web.json_response({"result": "success", "msg": "", "id": next(_ids)})

    return behaviour


# ── The receiver ─────────────────────────────────────────────────────────────────────────

TELEGRAM_TOKEN = "123456789:AAE-briefing_TestToken_0123456789abcd"
TELEGRAM_CHAT = "@briefing_test"
MATRIX_TOKEN = "syt_YnJpZWZpbmc_briefingTestAccessToken_0aB1cD"
MATRIX_ROOM = "!briefing:example.org"
GOOGLE_KEY = "AIzaSy-briefingTestKey0123456789abcdefgh"
GOOGLE_TOKEN = "briefingTestWebhookToken-0123456789abcdefgh"
NTFY_TOKEN = "tk_briefingtesttoken0123456789ab"
NTFY_TOPIC = "briefing-test"
ZULIP_EMAIL = "briefing-bot@zulip.example.org"
ZULIP_KEY = "Kz8hL2qP7mN4xV9wR3tY6uB1cD5eF0gH"


def target_for(kind: str, base: str, name: str) -> Target:
    """A ``kind`` target whose every request goes to ``base`` under ``/name``, with the
    secrets the stand-ins above expect."""
    where = f"{base}/{name}"
    if kind == "telegram":
        return Target(kind, f"{where}/{TELEGRAM_CHAT}", (TELEGRAM_TOKEN,))
    if kind == "matrix":
        return Target(kind, f"{where}/#/{MATRIX_ROOM}", (MATRIX_TOKEN,))
    if kind == "googlechat":
        return Target(
            kind, f"{where}/v1/spaces/AAAA/messages?key={GOOGLE_KEY}&token={GOOGLE_TOKEN}"
        )
    if kind == "ntfy":
        return Target(kind, f"{where}/{NTFY_TOPIC}", (NTFY_TOKEN,))
    if kind == "zulip":
        query = urlencode({"stream": "briefing", "topic": "Daily briefing", "email": ZULIP_EMAIL})
        return Target(kind, f"{where}/?{query}", (ZULIP_KEY,))
    if kind == "apprise":
        return Target(kind, f"json://{base.partition('://')[2]}/{name}")
    return Target(kind, where, (new_secret(),) if kind == "generic" else ())


@dataclass
class PlatformReceiver(HttpReceiver):
    """``HttpReceiver`` whose scripts answer their path and every path under it, and whose
    unscripted requests get the answer of the platform they are for (found by the path),
    or a plain ``200 ok``."""

    homeserver: Homeserver = field(default_factory=lambda: Homeserver(MATRIX_TOKEN))
    space: GoogleChatSpace = field(
        default_factory=lambda: GoogleChatSpace(GOOGLE_KEY, GOOGLE_TOKEN)
    )
    notifications: list[dict[str, Any]] = field(default_factory=list)  # what ntfy shows
    zulip_messages: list[dict[str, str]] = field(default_factory=list)  # what Zulip shows

    def target(self, kind: str, name: str, *behaviours: Behaviour) -> Target:
        """A ``kind`` target under ``/name``, answered by ``behaviours`` in turn (by its
        platform when none is given)."""
        self.script[f"/{name}"] = list(behaviours)
        return target_for(kind, self.base, name)

    def answer(self) -> Behaviour:
        """The platform's own answer, to put in a script."""

        async def behaviour(request: web.Request) -> web.StreamResponse:
            return await self.platform(request)(request)

        return behaviour

    def platform(self, request: web.Request) -> Behaviour:
        path = request.path
        if path.endswith("/sendMessage"):
            return telegram_api(TELEGRAM_TOKEN)
        if "/_matrix/" in path:
            return self.homeserver
        if "/v1/spaces/" in path:
            return self.space
        if path.endswith("/api/v1/messages"):
            return zulip_api(ZULIP_EMAIL, ZULIP_KEY, self.zulip_messages)
        if path.endswith("/") and request.content_type == "application/json":
            return ntfy_api(NTFY_TOKEN, self.notifications)
        return reply(200, "ok")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Received(request.path, request.query_string, dict(request.headers), body)
        )
        behaviours = self._script(request.path)
        if behaviours:
            behaviour = behaviours.pop(0) if len(behaviours) > 1 else behaviours[0]
        else:
            behaviour = self.platform(request)
        return await behaviour(request)

    def _script(self, path: str) -> list[Behaviour]:
        found = [p for p in self.script if path == p or path.startswith(p.rstrip("/") + "/")]
        return self.script[max(found, key=len)] if found else []

    def under(self, path: str) -> list[Received]:
        """The requests to ``path`` and the paths under it."""
        return [
            r for r in self.requests if r.path == path or r.path.startswith(path.rstrip("/") + "/")
        ]


def tattletale(status: int) -> Behaviour:
    """An answer that repeats the request (path, query, headers, body), as a careless proxy
    or a debugging endpoint might: an output must not show the secrets it holds."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        body = (await request.read())[:300]
        told = f"{request.method} {request.rel_url.raw_path_qs} {request.path_qs} "
        return web.Response(status=status, text=f"{told}{dict(request.headers)} {body!r}")

    return behaviour
