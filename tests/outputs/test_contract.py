"""One suite every output passes: found by entry point, delivers, classifies failures."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.digest import Digest, ReaderOptions, Window, compose
from bot.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    TargetError,
)
from bot.outputs import (
    Envelope,
    HttpLimits,
    Output,
    OutputContext,
    Target,
    TargetPolicy,
    output_class,
)
from bot.outputs.registry import output_classes
from bot.state import State, load_state
from tests.conftest import SEED_STATE
from tests.outputs.conftest import FAST, NOW, message_for, settings_for
from tests.outputs.platforms import (
    TELEGRAM_TAGS,
    PlatformReceiver,
    google_error,
    matrix_error,
    ntfy_error,
    telegram_error,
    zulip_error,
)
from tests.receivers import Received, reply, reply_json

WEBHOOK_KINDS = ["generic", "slack", "discord", "teams", "mattermost"]
# Native outputs calling a platform's API; each is tested against a local stand-in that
# answers as the platform documents (tests/outputs/platforms.py).
API_KINDS = ["telegram", "matrix", "googlechat", "ntfy", "zulip"]
HTTP_KINDS = WEBHOOK_KINDS + API_KINDS
KINDS = [*HTTP_KINDS, "email", "apprise"]
# How each platform says "slow down" (and the wait it gives, if any).
SLOW_DOWN = {
    "discord": (reply_json(429, {"retry_after": 2.5}), 2.5),
    "telegram": (telegram_error(429, "Too Many Requests: retry after 2", retry_after=2), 2.0),
    "matrix": (
        matrix_error(429, "M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=2000),
        2.0,
    ),
    "googlechat": (google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted"), None),
    "ntfy": (ntfy_error(429, 42901, "limit reached: too many requests, please be nice"), None),
    "zulip": (
        zulip_error(429, "RATE_LIMIT_HIT", "API usage exceeded rate limit", **{"retry-after": 2.0}),
        2.0,
    ),
}
# How each platform refuses a request for good.
REFUSE = {
    "telegram": telegram_error(400, "Bad Request: chat not found"),
    "matrix": matrix_error(400, "M_BAD_JSON", "Content not JSON."),
    "googlechat": google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
    "ntfy": ntfy_error(400, 40009, "invalid request: topic invalid"),
    "zulip": zulip_error(400, "STREAM_DOES_NOT_EXIST", "Channel 'briefing' does not exist"),
}


@pytest.fixture
async def receiver():
    """The tests' HTTP receiver, which also stands in for the chat platforms' APIs."""
    server = PlatformReceiver()
    await server.start()
    yield server
    await server.stop()


@dataclass
class Channel:
    output: Output
    ok: Target
    retryable: Target
    permanent: Target
    invalid: Target
    delivered: callable  # type: ignore[valid-type]


@pytest.fixture
async def channel(request, tmp_path, receiver, smtp):
    kind = request.param
    if kind == "email":
        port, handler = smtp
        handler.refusals = {"later": "452 4.2.2 Mailbox full", "never": "550 5.1.1 Unknown user"}
        ctx = OutputContext(
            settings=settings_for(
                tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
            ),
            policy=TargetPolicy(),
            limits=HttpLimits(total_timeout=5),
        )
        made = Channel(
            output_class(kind)(ctx),
            Target(kind, "ok@example.org"),
            Target(kind, "later@example.org"),
            Target(kind, "never@example.org"),
            Target(kind, "not an address"),
            lambda: len(handler.messages),
        )
    else:
        ctx = OutputContext(
            settings=settings_for(tmp_path), policy=TargetPolicy(allow_private=True), limits=FAST
        )
        later = SLOW_DOWN.get(kind, (reply(429, "slow down", {"Retry-After": "2"}), 2.0))[0]
        never = REFUSE.get(kind, reply(404, "no_service"))
        ok = receiver.target(kind, "ok")
        made = Channel(
            output_class(kind)(ctx),
            ok,
            receiver.target(kind, "later", reply(500, "boom") if kind == "apprise" else later),
            Target(kind, "json://", ok.secrets)
            if kind == "apprise"
            else receiver.target(kind, "never", never),
            Target(kind, "gopher://127.0.0.1/x", ok.secrets),
            lambda: len(receiver.under("/ok")),
        )
    yield made
    await made.output.aclose()
    await ctx.aclose()


@pytest.mark.parametrize("channel", KINDS, indirect=True)
async def test_delivers(channel: Channel, renderer, digest) -> None:
    kind = channel.ok.kind
    target = await channel.output.validate(channel.ok)
    receipt = await channel.output.send(
        target, message_for(renderer, digest, kind), envelope=Envelope("dlv_ok")
    )
    assert receipt.status in {"200", "250", "sent"} and receipt.parts >= 1
    assert channel.delivered() == receipt.parts


@pytest.mark.parametrize("channel", KINDS, indirect=True)
async def test_retryable_failure(channel: Channel, renderer, digest) -> None:
    kind = channel.ok.kind
    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.output.send(
            channel.retryable, message_for(renderer, digest, kind), envelope=Envelope("d")
        )
    if kind in HTTP_KINDS:
        wait = SLOW_DOWN.get(kind, (None, 2.0))[1]
        assert caught.value.retry_after == wait and caught.value.status == 429


@pytest.mark.parametrize("channel", KINDS, indirect=True)
async def test_permanent_failure(channel: Channel, renderer, digest) -> None:
    kind = channel.ok.kind
    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.output.send(
            channel.permanent, message_for(renderer, digest, kind), envelope=Envelope("d")
        )
    assert not caught.value.gone and caught.value.reason


@pytest.mark.parametrize("channel", KINDS, indirect=True)
async def test_invalid_target_is_refused(channel: Channel) -> None:
    with pytest.raises(TargetError):
        await channel.output.validate(channel.invalid)


@pytest.mark.parametrize("kind", HTTP_KINDS)
@pytest.mark.parametrize(
    ("answer", "error", "gone"),
    [
        (reply(500, "boom"), RetryableDeliveryError, False),
        (
            reply(
                503,
                "busy",
                {
                    "Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT",
                    "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
                },
            ),
            RetryableDeliveryError,
            False,
        ),
        (reply(408, "timeout"), RetryableDeliveryError, False),
        (reply(410, "gone"), PermanentDeliveryError, True),
        (reply(400, "invalid_payload"), PermanentDeliveryError, False),
        (reply(302, "", {"Location": "https://example.org/"}), PermanentDeliveryError, False),
    ],
)
async def test_status_handling(
    kind, answer, error, gone, receiver, tmp_path, renderer, digest
) -> None:
    ctx = OutputContext(
        settings=settings_for(tmp_path), policy=TargetPolicy(allow_private=True), limits=FAST
    )
    target = receiver.target(kind, "status", answer)
    try:
        with pytest.raises(error) as caught:
            await output_class(kind)(ctx).send(
                target, message_for(renderer, digest, kind), envelope=Envelope("d")
            )
    finally:
        await ctx.aclose()
    assert getattr(caught.value, "gone", False) is gone
    if "503" in caught.value.reason:
        assert caught.value.retry_after == 30.0


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_dropped_connection_is_retryable(kind, receiver, context, renderer, digest) -> None:
    from tests.receivers import drop

    target = receiver.target(kind, "drop", drop())
    with pytest.raises(RetryableDeliveryError, match="connection failed|timed out"):
        await output_class(kind)(context).send(
            target, message_for(renderer, digest, kind), envelope=Envelope("d")
        )


def test_every_builtin_is_registered_by_entry_point() -> None:
    assert set(KINDS) <= set(output_classes())


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown output kind 'pager' \(known: apprise, discord, email, generic"
    ):
        output_class("pager")


PLUGIN = """
from bot.outputs import Output, Receipt


class PigeonOutput(Output):
    name = "pigeon"
    formats = ("text",)
    sent = []

    async def validate(self, target):
        return target

    async def send(self, target, message, *, envelope):
        PigeonOutput.sent.append((target.address, message.body("text")[:20]))
        return Receipt(status="landed")
"""


async def test_third_party_output_plugs_in_through_entry_points(
    tmp_path, monkeypatch, context, renderer, digest
) -> None:
    (tmp_path / "pigeon_output.py").write_text(PLUGIN, encoding="utf-8")
    dist = tmp_path / "pigeon_output-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pigeon-output\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[briefing.outputs]\npigeon = pigeon_output:PigeonOutput\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    output_classes.cache_clear()
    try:
        cls = output_class("pigeon")
        receipt = await cls(context).send(
            Target("pigeon", "loft"),
            message_for(renderer, digest, "pigeon"),
            envelope=Envelope("d"),
        )
        assert receipt.status == "landed" and cls.sent == [("loft", digest.story.upper()[:20])]  # type: ignore[attr-defined]
    finally:
        monkeypatch.delitem(sys.modules, "pigeon_output", raising=False)
        output_classes.cache_clear()


def test_delivery_errors_share_one_tree() -> None:
    assert issubclass(RetryableDeliveryError, DeliveryError) and issubclass(
        PermanentDeliveryError, DeliveryError
    )


# ── State text never becomes a link, a mention or markup, whatever the output ─────────────

HOSTILE = [
    "[EVILLINK](https://evil.example/a)",
    "![EVILIMG](https://evil.example/i.png)",
    "[EVILREF][r]",
    "<https://evil.example/auto>",
    "<javascript:alert(1)>",
    "[EVILJS](javascript:alert(1))",
    "javascript:alert(1)",
    "<script>alert(1)</script>",
    "<b>EVILTAG</b>",
    '<img src=x onerror="alert(1)">',
    "<at>Everyone</at>",
    "@everyone",
    "@here",
    "@channel",
    "@all",
    "@room",
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<@&456>",
    "<#C789>",
    "{{ 7*191 }}",
    "{% if true %}JINJA{% endif %}",
    "{{DATE(2025-12-02T06:00:00Z,SHORT)}}",
    "${7*191}",
    "**BOLDED**",
    "__BOLDED2__",
    "*ITALIC*",
    "_ITALIC2_",
    "~~STRUCK~~",
    "`CODED`",
    "||SPOILER||",
]
# What only counts at the start of a line (summaries span lines), each its own paragraph.
HOSTILE_LINES = [
    "[r]: https://evil.example/ref",
    "- LISTED",
    "1. NUMBERED",
    "# HEADED",
    "> QUOTED",
    "TITLED\n===",
]
HOSTILE_URL = "https://news.example/r)[EVILURL](https://evil.example/u"
# Hosts and schemes a link in a message may have: the bot's own links, never state text's.
EVIL_HOSTS = {"evil.example"}
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060"), None)
# Glyphs outputs may use in place of markup characters; a reader sees the same character.
LOOKALIKES = str.maketrans(
    {"∗": "*", "＿": "_", "∼": "~", "ˋ": "`", "［": "[", "］": "]", "＜": "<", "＞": ">"}
)
# Markdown tokens that are markup besides every *_open (paragraphs aside: a longer text
# may be split into more messages, hence more paragraphs).
MARKUP_TOKENS = {"code_inline", "html_inline", "html_block", "image", "hr", "fence", "code_block"}
MENTIONS = re.compile(r"@(everyone|here|channel|all|room)\b|(?<!\\)<[@#!]|<at>", re.IGNORECASE)


def one_liners(words: list[str], size: int = 190) -> list[str]:
    """``words`` joined into one-line texts of at most ``size`` characters."""
    lines = [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > size:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    return lines


def hostile_state(directory: Path, words: list[str], lines: list[str], url: str) -> State:
    """The seed state plus a topic, actors, a source and developments whose every text
    field holds ``words`` (the summaries ``lines`` too, one a line)."""
    shutil.copytree(SEED_STATE, directory)
    texts = one_liners(words)

    def line(n: int) -> dict[str, str]:
        text = texts[n % len(texts)]
        return {"en": text, "fr": text}

    summary = "\n".join(["Summary:", *words]) + "\n\n" + "\n\n".join(lines)
    paragraphs = {"en": summary, "fr": summary}
    story = (directory / "story.yaml").read_text(encoding="utf-8")
    story = story.replace("en: US–Russia–Ukraine peace talks", f"en: {json.dumps(texts[0])}")
    (directory / "story.yaml").write_text(story, encoding="utf-8")
    base = {"recorded": "2025-12-02T13:00:00Z", "topic": "hostile", "sources": ["hostile-src"]}
    extra = {
        "topics": [{"id": "hostile", "name": line(1), "status": paragraphs}],
        "actors": [
            {"id": "hostile-one", "kind": "person", "name": line(2), "role": line(3)},
            {"id": "hostile-two", "kind": "group", "name": line(4)},
        ],
        "sources": [
            {
                "id": "hostile-src",
                "title": line(5),
                "publisher": line(6),
                "published": "2025-12-02",
                "language": "en",
                "url": url,
            }
        ],
        "developments": [
            {
                **base,
                "id": "hostile-new",
                "when": {"at": "2025-12-02"},
                "standing": "claimed",
                "importance": 5,
                "reported_by": ["hostile-one", "hostile-two"],
                "title": line(7),
                "summary": paragraphs,
                "figures": [{"label": line(8), "value": 3, "unit": "length-kilometer"}],
            },
            {
                **base,
                "id": "hostile-contested",
                "when": {"at": "2025-12-02"},
                "standing": "contested",
                "title": line(9),
                "summary": paragraphs,
                "sides": [
                    {"actor": "hostile-one", "position": paragraphs},
                    {"actor": "hostile-two", "position": line(10)},
                ],
            },
            {
                **base,
                "id": "hostile-expected",
                "when": {"at": "2025-12-20"},
                "standing": "expected",
                "title": line(11),
                "summary": paragraphs,
            },
        ],
    }
    (directory / "zz_hostile.yaml").write_text(
        yaml.safe_dump(extra, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return load_state(directory)


@pytest.fixture(scope="module")
def hostile_digests(tmp_path_factory) -> tuple[Digest, Digest]:
    """The hostile digest, and the same with every hostile string replaced by a plain word."""
    tame_words = [f"plain{n}" for n in range(len(HOSTILE))]
    tame_lines = [f"line{n}\nline{n}" for n in range(len(HOSTILE_LINES))]
    states = [
        hostile_state(
            tmp_path_factory.mktemp("hostile") / "s", HOSTILE, HOSTILE_LINES, HOSTILE_URL
        ),
        hostile_state(
            tmp_path_factory.mktemp("tame") / "s", tame_words, tame_lines, "https://news.example/r"
        ),
    ]
    options = ReaderOptions(timezone="Europe/Paris")
    hostile, tame = (compose(s, options, Window.ending(NOW)) for s in states)
    assert any(d.id == "hostile-new" for s in hostile.sections for d in s.new)
    assert hostile.watch_next and any(s.contested for s in hostile.sections)
    return hostile, tame


@dataclass
class Seen:
    """What a reader's client makes of a payload: the text shown, the links, the markup."""

    shown: str = ""
    links: list[str] = field(default_factory=list)
    markup: Counter[str] = field(default_factory=Counter)
    raw: str = ""

    def add(self, other: Seen) -> None:
        self.shown += other.shown + "\n"
        self.links += other.links
        self.markup += other.markup
        self.raw += other.raw + "\n"


def markdown_seen(text: str, *, chat: bool = True, escapes: bool = True) -> Seen:
    """CommonMark (with ~~strikethrough~~), as Discord, Mattermost and markdown readers do;
    ``escapes=False`` for Adaptive Cards, which have no backslash escapes. ``chat``: a chat
    client also reads mentions in it."""
    parser = MarkdownIt("commonmark").enable("strikethrough")
    if not escapes:
        parser.disable("escape")
    seen = Seen(raw=text if chat else "")

    def walk(tokens: list[Token]) -> None:
        for token in tokens:
            if token.type == "link_open":
                seen.links.append(str(token.attrs["href"]))
            if token.type in ("text", "code_inline"):
                seen.shown += token.content
            elif token.type in ("softbreak", "hardbreak") or token.block:
                seen.shown += "\n"
            if token.type in MARKUP_TOKENS or (
                token.type.endswith("_open") and token.type != "paragraph_open"
            ):
                seen.markup[token.type] += 1
            if token.children and token.type != "image":
                walk(token.children)

    walk(parser.parse(text))
    return seen


def html_seen(html: str) -> Seen:
    seen = Seen()

    class Reader(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            seen.markup[tag] += 1
            seen.markup.update(f"@{name}" for name, _ in attrs if name.startswith("on"))
            seen.links += [value or "" for name, value in attrs if name in ("href", "src")]
            if tag == "br":
                seen.shown += "\n"

        def handle_data(self, data: str) -> None:
            seen.shown += data

    Reader(convert_charrefs=True).feed(html)
    return seen


def slack_seen(text: str) -> Seen:
    """Slack mrkdwn: ``<url|text>`` links and ``<!…>``/``<@…>`` mentions; *b* _i_ ~s~ `c`."""
    seen = Seen(raw=text)
    for match in re.finditer(r"<([^>|]*)(?:\|([^>]*))?>", text):
        seen.links.append(match.group(1))
    seen.markup.update(c for c in text if c in "<*_~`")
    shown = re.sub(r"<[^>|]*\|([^>]*)>", r"\1", text)
    seen.shown = shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return seen


def plain_seen(text: str) -> Seen:
    return Seen(shown=text)


def telegram_seen(payload: dict) -> Seen:
    """Telegram's HTML parse mode: its tag subset only, link previews off."""
    assert payload["parse_mode"] == "HTML"
    assert payload["link_preview_options"] == {"is_disabled": True}
    seen = html_seen(payload["text"])
    assert set(seen.markup) <= TELEGRAM_TAGS, seen.markup
    seen.raw = payload["text"]
    return seen


def matrix_seen(content: dict) -> Seen:
    """An m.room.message: the HTML a client shows, and the plain body it falls back to."""
    assert content["format"] == "org.matrix.custom.html" and content["m.mentions"] == {}
    seen = html_seen(content["formatted_body"])
    del seen.markup["br"]  # the text's own line breaks (state text cannot write a tag)
    seen.add(plain_seen(content["body"]))
    # the plain body is read for @room only (legacy push rules); <@U123> means nothing there
    assert not re.search(r"@room\b", content["body"])
    seen.raw = content["formatted_body"]
    return seen


def google_chat_seen(text: str) -> Seen:
    """Google Chat text: ``<url|text>`` links, ``<users/…>`` mentions, *b* _i_ ~s~ `c`, and
    lists made by ``*`` or ``-`` at a line's start; no escapes, no entities."""
    assert "<users/" not in text
    seen = Seen(raw=text)
    seen.links += [match[1] for match in re.finditer(r"<([^>|]*)(?:\|([^>]*))?>", text)]
    seen.markup.update(c for c in text if c in "<*_~`")
    seen.markup["list"] += len(re.findall(r"^[*-] ", text, re.MULTILINE))
    seen.shown = re.sub(r"<[^>|]*\|([^>]*)>", r"\1", text)
    return seen


def payload_seen(kind: str, payload: dict) -> Seen:
    seen = Seen()
    if kind == "generic":
        seen.add(markdown_seen(payload["markdown"], chat=False))
        seen.add(html_seen(payload["html"]))
        seen.add(plain_seen(payload["text"]))
    elif kind == "slack":
        seen.add(slack_seen(payload["text"]))
        for block in payload["blocks"]:
            if block["type"] == "section":
                seen.add(slack_seen(block["text"]["text"]))
    elif kind == "discord":
        assert payload["allowed_mentions"] == {"parse": []}
        seen.add(markdown_seen(payload["content"]))
        for embed in payload["embeds"]:
            seen.add(markdown_seen(embed["title"]))
            seen.add(markdown_seen(embed["description"]))
    elif kind == "teams":
        card = payload["attachments"][0]["content"]
        assert "entities" not in card.get("msteams", {})  # no <at> mention can resolve
        for block in card["body"]:
            seen.add(markdown_seen(block["text"], escapes=False))
            assert "{{" not in block["text"]  # Adaptive Card {{DATE()}}/{{TIME()}} functions
    elif kind == "telegram":
        seen.add(telegram_seen(payload))
    elif kind == "matrix":
        seen.add(matrix_seen(payload))
    elif kind == "googlechat":
        seen.add(google_chat_seen(payload["text"]))
    elif kind in ("ntfy", "apprise"):
        seen.add(plain_seen(payload["title"]))  # a notification's title is plain text
        seen.add(markdown_seen(payload["message"]))
    elif kind == "zulip":
        seen.add(markdown_seen(payload["content"]))
    else:
        seen.add(markdown_seen(payload["text"]))
    return seen


def payload_of(kind: str, request: Received) -> dict:
    """What a request carried: its form (Zulip) or its JSON."""
    return dict(parse_qsl(request.body.decode())) if kind == "zulip" else request.json()


def email_seen(raw: bytes) -> Seen:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    subject = str(message["Subject"])
    assert "\n" not in subject and "\r" not in subject
    seen = plain_seen(subject)
    for kind, read in (("plain", plain_seen), ("html", html_seen)):
        part = message.get_body((kind,))
        assert part is not None, kind
        seen.add(read(part.get_content().replace("\r\n", "\n")))
    return seen


async def sent(channel: Channel, renderer, digest: Digest, receiver, smtp) -> Seen:
    """Send ``digest`` through the channel to its real local receiver; what arrived."""
    kind = channel.ok.kind
    before = len(receiver.under("/ok"))
    await channel.output.send(
        channel.ok, message_for(renderer, digest, kind), envelope=Envelope(f"dlv_{kind}")
    )
    seen = Seen()
    if kind == "email":
        seen.add(email_seen(bytes(smtp[1].messages[-1].content)))
    for request in receiver.under("/ok")[before:]:
        seen.add(payload_seen(kind, payload_of(kind, request)))
    return seen


@pytest.mark.parametrize("channel", KINDS, indirect=True)
async def test_state_text_never_becomes_a_link_mention_or_markup(
    channel: Channel, renderer, hostile_digests, receiver, smtp
) -> None:
    hostile, tame = hostile_digests
    attacked = await sent(channel, renderer, hostile, receiver, smtp)
    plain = await sent(channel, renderer, tame, receiver, smtp)
    # no link from state text: every link goes where the bot's own links go
    for link in attacked.links:
        parts = urlsplit(link)
        assert parts.scheme in ("http", "https", "mailto"), link
        assert parts.hostname not in EVIL_HOSTS, link
    assert len(attacked.links) == len(plain.links), (attacked.links, plain.links)
    # no markup from state text: exactly the markup the same digest has with plain words
    assert attacked.markup == plain.markup, attacked.markup - plain.markup
    # no mention: nothing a client would read as @everyone, <!channel>, <@U123> or <at>
    assert not MENTIONS.findall(attacked.raw), MENTIONS.findall(attacked.raw)[:5]
    # and the reader still sees the text as written (templates not evaluated, nothing lost)
    shown = attacked.shown.translate(INVISIBLE).translate(LOOKALIKES)
    missing = [text for text in [*HOSTILE, *HOSTILE_LINES] if text not in shown]
    assert not missing, missing
    assert "1337" not in shown


# ── Native outputs: limits, resuming, secrets, the SSRF guard ───────────────────────────

SPLIT_KINDS = [*API_KINDS, "apprise"]
FILLER = re.compile(r"Filler development number \d+ ")


async def no_sleep(seconds: float) -> None:
    return None


def within_limits(kind: str, request: Received) -> None:
    """The platform's documented limit for one message (the stand-ins refuse more too)."""
    payload = payload_of(kind, request)
    if kind == "telegram":  # characters after entity parsing, counted in UTF-16
        assert len(html_seen(payload["text"]).shown.encode("utf-16-le")) // 2 <= 4096
    elif kind == "matrix":  # 65,536 bytes an event, the homeserver's envelope included
        assert len(request.body) <= 60_000
    elif kind == "googlechat":
        assert len(payload["text"]) <= 4096
    elif kind == "ntfy":
        assert len(payload["message"].encode()) <= 4096
    elif kind == "zulip":
        assert len(payload["content"].encode()) <= 10_000
    else:  # Apprise's json:// service: body_maxlen
        assert len(payload["message"]) <= 32_768


@pytest.mark.parametrize("kind", SPLIT_KINDS)
async def test_a_long_digest_is_split_within_limits_in_order(
    kind, receiver, context, renderer, long_digest
) -> None:
    target = receiver.target(kind, "long")
    output = output_class(kind)(context)
    receipt = await output.send(
        target, message_for(renderer, long_digest, kind), envelope=Envelope("dlv_long")
    )
    requests = receiver.under("/long")
    assert receipt.parts == len(requests) > 1
    for request in requests:
        within_limits(kind, request)
    seen = [payload_seen(kind, payload_of(kind, r)) for r in requests]
    if kind == "matrix":  # the HTML only, not also its plain fallback
        seen = [html_seen(payload_of(kind, r)["formatted_body"]) for r in requests]
    shown = "\n".join(s.shown for s in seen)
    # every development once, in the digest's order: nothing lost, nothing repeated
    assert FILLER.findall(shown) == FILLER.findall(renderer.render(long_digest, "text"))


@pytest.mark.parametrize("kind", SPLIT_KINDS)
async def test_a_retry_resumes_at_the_failed_part(
    kind, receiver, context, renderer, long_digest
) -> None:
    from bot.delivery import RetryPolicy, deliver

    answer = receiver.answer()
    target = receiver.target(kind, "resume", answer, reply(500, "boom"), answer)
    message = message_for(renderer, long_digest, kind)
    outcome = await deliver(
        output_class(kind)(context),
        target,
        message,
        envelope=Envelope("dlv_resume"),
        policy=RetryPolicy(attempts=3, base=0.01, cap=0.01),
        sleep=no_sleep,
    )
    requests = receiver.under("/resume")
    assert outcome.ok and outcome.attempts == 2
    assert len(requests) == outcome.parts + 1  # the second part twice, every other once
    bodies = [r.body for r in requests]
    assert bodies[1] == bodies[2] and bodies.count(bodies[0]) == 1


def shown_secrets(kind: str, target: Target) -> list[str]:
    """Everything of ``target`` that must never be shown: its secrets, tokens in its
    address, credentials derived from them."""
    import base64

    found = list(target.secrets)
    query = dict(parse_qsl(urlsplit(target.address).query))
    found += [query[k] for k in ("key", "token") if k in query]
    if kind == "zulip":
        found.append(base64.b64encode(f"{query['email']}:{target.secrets[0]}".encode()).decode())
    if kind == "apprise":
        found.append(urlsplit(target.address).password or "")
    return [secret for secret in found if secret]


@pytest.mark.parametrize("status", [200, 400, 500])
@pytest.mark.parametrize("kind", SPLIT_KINDS)
async def test_secrets_are_never_shown(kind, status, receiver, context, renderer, digest) -> None:
    from tests.outputs.platforms import tattletale

    target = receiver.target(kind, "tell", tattletale(status))
    if kind == "apprise":
        target = Target(kind, target.address.replace("://", "://briefing:Pa55word-kept-secret@"))
    output = output_class(kind)(context)
    told = []
    try:
        receipt = await output.send(
            target, message_for(renderer, digest, kind), envelope=Envelope("d")
        )
        told.append(receipt.answer)
    except DeliveryError as exc:
        told += [exc.reason, str(exc)]
    assert receiver.under("/tell")
    if kind != "apprise":  # Apprise tells only that it failed
        assert "/tell" in " ".join(told)  # the answer is shown…
    for secret in shown_secrets(kind, target):  # …but never a secret
        assert all(secret not in text for text in told), (secret, told)


@pytest.mark.parametrize("kind", SPLIT_KINDS)
async def test_private_targets_are_refused(kind, receiver, tmp_path, renderer, digest) -> None:
    strict = OutputContext(
        settings=settings_for(tmp_path, allow_private_targets=False),
        policy=TargetPolicy(),
        limits=FAST,
    )
    target = receiver.target(kind, "private")
    target = Target(kind, target.address.replace("http://", "https://"), target.secrets)
    output = output_class(kind)(strict)
    try:
        with pytest.raises(TargetError, match="loopback"):
            await output.validate(target)
        with pytest.raises(PermanentDeliveryError, match="loopback"):
            await output.send(target, message_for(renderer, digest, kind), envelope=Envelope("d"))
    finally:
        await output.aclose()
        await strict.aclose()
    assert not receiver.under("/private")


@pytest.mark.parametrize("kind", API_KINDS)
async def test_payloads_preview_what_each_part_carries(kind, context, renderer, digest) -> None:
    output = output_class(kind)(context)
    message = message_for(renderer, digest, kind)
    payloads = output.payloads(message)  # type: ignore[attr-defined]
    assert len(payloads) == len(output.parts(message)) >= 1  # type: ignore[attr-defined]
    assert json.loads(json.dumps(payloads, ensure_ascii=False)) == payloads
