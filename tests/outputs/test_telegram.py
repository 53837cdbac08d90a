"""Telegram's output against a local Bot API stand-in (tests/outputs/platforms.py), which
answers as https://core.telegram.org/bots/api documents."""

from __future__ import annotations

import pytest

from bot.errors import PermanentDeliveryError, RetryableDeliveryError, TargetError
from bot.outputs import (
    Envelope,
    HttpLimits,
    OutputContext,
    Target,
    TargetPolicy,
    infer_kind,
    output_class,
)
from bot.outputs.fit import fit_html, html_to_text
from bot.settings import Settings
from tests.outputs.conftest import message_for
from tests.outputs.platforms import (
    TELEGRAM_CHAT,
    TELEGRAM_TOKEN,
    PlatformReceiver,
    telegram_error,
)


@pytest.fixture
async def api():
    server = PlatformReceiver()
    await server.start()
    yield server
    await server.stop()


async def test_send_message_in_html_without_link_previews(api, context, renderer, digest) -> None:
    output = output_class("telegram")(context)
    target = await output.validate(api.target("telegram", "bot"))
    receipt = await output.send(
        target, message_for(renderer, digest, "telegram"), envelope=Envelope("dlv_tg")
    )
    requests = api.under("/bot")
    assert receipt.status == "200" and receipt.parts == len(requests) >= 1
    assert '"ok":true' in receipt.answer.replace(" ", "")
    first = requests[0]
    assert first.path == f"/bot/bot{TELEGRAM_TOKEN}/sendMessage"
    payload = first.json()
    assert payload["chat_id"] == TELEGRAM_CHAT
    assert payload["parse_mode"] == "HTML"
    assert payload["link_preview_options"] == {"is_disabled": True}
    assert payload["text"].startswith(f"<b>{digest.story} — ")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("@briefing_news", "https://api.telegram.org/@briefing_news"),
        ("-1001234567890", "https://api.telegram.org/-1001234567890"),
        ("https://api.telegram.org/@briefing_news/", "https://api.telegram.org/@briefing_news"),
    ],
)
async def test_a_chat_becomes_a_target_on_the_bot_api(given, kept) -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["149.154.167.220"]  # api.telegram.org, without asking DNS

    ctx = OutputContext(
        settings=Settings(_env_file=None),
        policy=TargetPolicy(lookup=public),
        limits=HttpLimits(),
    )
    target = await output_class("telegram")(ctx).validate(
        Target("telegram", given, (TELEGRAM_TOKEN,))
    )
    assert target.address == kept and target.secrets == (TELEGRAM_TOKEN,)


@pytest.mark.parametrize(
    ("address", "secrets", "problem"),
    [
        ("@briefing_news", (), "token"),
        ("@briefing_news", ("not-a-token",), "looks like"),
        ("@x", (TELEGRAM_TOKEN,), "chat"),
        (f"https://api.telegram.org/bot{TELEGRAM_TOKEN}/sendMessage", (TELEGRAM_TOKEN,), "secret"),
    ],
)
async def test_bad_targets_are_refused_without_showing_the_token(
    context, address, secrets, problem
) -> None:
    with pytest.raises(TargetError, match=problem) as caught:
        await output_class("telegram")(context).validate(Target("telegram", address, secrets))
    assert TELEGRAM_TOKEN not in str(caught.value)


async def test_flood_control_waits_as_long_as_telegram_says(api, context, renderer, digest) -> None:
    slow = telegram_error(429, "Too Many Requests: retry after 17", retry_after=17)
    target = api.target("telegram", "flood", slow)
    with pytest.raises(RetryableDeliveryError) as caught:
        await output_class("telegram")(context).send(
            target, message_for(renderer, digest, "telegram"), envelope=Envelope("d")
        )
    assert caught.value.retry_after == 17.0 and "retry after 17" in caught.value.reason


@pytest.mark.parametrize(
    ("status", "description"),
    [
        (403, "Forbidden: bot was blocked by the user"),
        (403, "Forbidden: bot was kicked from the channel chat"),
        (401, "Unauthorized"),
    ],
)
async def test_a_bot_removed_or_refused_pauses_the_subscription(
    api, context, renderer, digest, status, description
) -> None:
    target = api.target("telegram", "gone", telegram_error(status, description))
    with pytest.raises(PermanentDeliveryError) as caught:
        await output_class("telegram")(context).send(
            target, message_for(renderer, digest, "telegram"), envelope=Envelope("d")
        )
    assert caught.value.gone and description in caught.value.reason


async def test_a_group_that_became_a_supergroup_says_where_it_went(
    api, context, renderer, digest
) -> None:
    moved = telegram_error(
        400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-1009
    )
    target = api.target("telegram", "moved", moved)
    with pytest.raises(PermanentDeliveryError, match="-1009") as caught:
        await output_class("telegram")(context).send(
            target, message_for(renderer, digest, "telegram"), envelope=Envelope("d")
        )
    assert not caught.value.gone


def test_a_line_too_long_for_a_message_loses_its_markup_not_its_tags_balance() -> None:
    line = "<b>Sources</b> " + " ".join(
        f'<a href="https://example.org/{n}?a=1&amp;b=2">link &amp; title {n}</a>'
        for n in range(300)
    )
    pieces = fit_html(f"<b>Title</b>\n{line}", 1000)
    first, _, rest = pieces[0].partition("\n")
    assert first == "<b>Title</b>" and len(pieces) > 2
    assert all(len(p) <= 1000 for p in pieces)
    assert all("<" not in p for p in [rest, *pieces[1:]])  # plain text: no tag cut in two
    text = " ".join(html_to_text(p) for p in pieces)
    assert "link & title 299 (https://example.org/299?a=1&b=2)" in text


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("@briefing_news", "telegram"),
        ("https://api.telegram.org/@briefing_news", "telegram"),
        ("reader@example.org", "email"),
    ],
)
def test_kind_is_inferred(address, kind) -> None:
    assert infer_kind(address) == kind
