from __future__ import annotations

import re
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bot.delivery import RetryPolicy, deliver
from bot.errors import PermanentDeliveryError, RetryableDeliveryError, TargetError
from bot.outputs import Envelope, OutputContext, Target, output_class
from bot.outputs.webhooks import new_secret
from tests.outputs.conftest import message_for
from tests.receivers import HttpReceiver, reply

CHAT_KINDS = ["slack", "discord", "teams", "mattermost"]


async def no_sleep(seconds: float) -> None:
    return None


async def test_generic_is_signed_per_standard_webhooks(receiver, context, renderer, digest) -> None:
    secret = new_secret()
    url = receiver.on("/generic")
    output = output_class("generic")(context)
    target = await output.validate(Target("generic", url, (secret,)))
    receipt = await output.send(
        target, message_for(renderer, digest, "generic"), envelope=Envelope("dlv_123")
    )
    assert receipt.status == "200" and receipt.answer == "ok"
    (request,) = receiver.hits("/generic")
    headers = request.headers
    assert headers["webhook-id"] == "dlv_123"
    assert re.fullmatch(r"\d{10}", headers["webhook-timestamp"])
    assert re.fullmatch(r"v1,[A-Za-z0-9+/=]+", headers["webhook-signature"])
    payload = Webhook(secret).verify(request.body, headers)
    assert payload["type"] == "briefing.digest" and payload["schema_version"] == 2
    assert payload["digest"]["story"] == digest.story
    assert "Pokrovsk" in payload["text"] and "Pokrovsk" in payload["markdown"]
    assert payload["html"].startswith("<!DOCTYPE html>")
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, headers)
    tampered = request.body.replace(b"Pokrovsk", b"Kyiv", 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)


async def test_generic_signs_with_every_secret_while_rotating(
    receiver, context, renderer, digest
) -> None:
    old, new = new_secret(), new_secret()
    url = receiver.on("/rotating")
    output = output_class("generic")(context)
    await output.send(
        Target("generic", url, (old, new)),
        message_for(renderer, digest, "generic"),
        envelope=Envelope("dlv_rot"),
    )
    (request,) = receiver.hits("/rotating")
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)


async def test_webhook_id_is_stable_across_retries(receiver, context, renderer, digest) -> None:
    url = receiver.on("/flaky", reply(500, "boom"), reply(503, "busy"), reply(200, "ok"))
    output = output_class("generic")(context)
    outcome = await deliver(
        output,
        Target("generic", url, (new_secret(),)),
        message_for(renderer, digest, "generic"),
        envelope=Envelope("dlv_stable"),
        policy=RetryPolicy(attempts=5, base=0.01, cap=0.01),
        sleep=no_sleep,
    )
    assert outcome.ok and outcome.attempts == 3
    ids = {r.headers["webhook-id"] for r in receiver.hits("/flaky")}
    assert ids == {"dlv_stable"} and len(receiver.hits("/flaky")) == 3


@pytest.mark.parametrize(
    "secret",
    ["nope", "whsec_" + "A" * 8, "whsec_not*base64*at*all"],
)
async def test_generic_refuses_weak_secrets(context, secret) -> None:
    with pytest.raises(TargetError, match="secret"):
        await output_class("generic")(context).validate(
            Target("generic", "http://127.0.0.1:9/x", (secret,))
        )


def chat_texts(kind: str, payload: dict) -> list[str]:
    """Every piece of reader-visible text in a chat payload."""
    if kind == "slack":
        return [b["text"]["text"] for b in payload["blocks"] if "text" in b]
    if kind == "discord":
        return [payload["content"]] + [
            t for e in payload["embeds"] for t in (e["title"], e["description"])
        ]
    if kind == "teams":
        return [b["text"] for b in payload["attachments"][0]["content"]["body"]]
    return [payload["text"]]


def check_limits(kind: str, payload: dict) -> None:
    if kind == "slack":
        assert len(payload["blocks"]) <= 50
        for block in payload["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
            if block["type"] == "header":
                assert len(block["text"]["text"]) <= 150
        assert payload["text"]
    elif kind == "discord":
        assert len(payload["content"]) <= 2000 and len(payload["embeds"]) <= 10
        assert all(
            len(e["title"]) <= 256 and len(e["description"]) <= 4096 for e in payload["embeds"]
        )
        assert sum(len(e["title"]) + len(e["description"]) for e in payload["embeds"]) <= 6000
        assert payload["allowed_mentions"] == {"parse": []}
    elif kind == "teams":
        import json

        assert len(json.dumps(payload, ensure_ascii=False).encode()) <= 28_000
        attachment = payload["attachments"][0]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert attachment["content"]["type"] == "AdaptiveCard"
    else:
        assert len(payload["text"]) <= 16_383


@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_long_digest_is_split_within_limits_in_order(
    kind, receiver, context, renderer, long_digest
) -> None:
    url = receiver.on(f"/{kind}")
    output = output_class(kind)(context)
    message = message_for(renderer, long_digest, kind)
    receipt = await output.send(Target(kind, url), message, envelope=Envelope("dlv_long"))
    requests = receiver.hits(f"/{kind}")
    assert receipt.parts == len(requests) > 1
    payloads = [r.json() for r in requests]
    for payload in payloads:
        check_limits(kind, payload)
    text = "\n".join(t for p in payloads for t in chat_texts(kind, p))
    # every development, in the order the digest gives them, is there
    position = text.find(long_digest.sections[0].status[:40])
    for title in (d.title for s in long_digest.sections for d in s.new):
        position = text.find(title, position + 1)
        assert position != -1, title
    # no word or link was cut: every word of every summary appears whole
    summary_words = {w for s in long_digest.sections for d in s.new for w in d.summary.split()}
    words_sent = set(re.split(r"\s+", text.replace("\\", "")))
    assert {w for w in summary_words if w.startswith(("word", "https://"))} <= words_sent


async def test_discord_asks_to_wait_so_drops_are_errors(
    receiver, context, renderer, digest
) -> None:
    url = receiver.on("/api/webhooks/1/token")
    output = output_class("discord")(context)
    await output.send(
        Target("discord", url + "?thread_id=5"),
        message_for(renderer, digest, "discord"),
        envelope=Envelope("dlv_d"),
    )
    requests = receiver.hits("/api/webhooks/1/token")
    assert requests and all(r.query == "thread_id=5&wait=true" for r in requests)


async def test_teams_accepts_202(receiver, context, renderer, digest) -> None:
    url = receiver.on("/teams202", reply(202, ""))
    receipt = await output_class("teams")(context).send(
        Target("teams", url), message_for(renderer, digest, "teams"), envelope=Envelope("dlv_t")
    )
    assert receipt.status == "202"


async def test_a_failed_part_is_resumed_not_repeated(
    receiver, context, renderer, long_digest
) -> None:
    url = receiver.on("/resume", reply(200), reply(500, "boom"), reply(200))
    output = output_class("mattermost")(context)
    message = message_for(renderer, long_digest, "mattermost")
    outcome = await deliver(
        output,
        Target("mattermost", url),
        message,
        envelope=Envelope("dlv_r"),
        policy=RetryPolicy(attempts=3, base=0.01, cap=0.01),
        sleep=no_sleep,
    )
    bodies = [r.body for r in receiver.hits("/resume")]
    assert outcome.ok and outcome.attempts == 2
    # part 1 once, part 2 twice (failed, then retried), the rest once
    assert bodies[1] == bodies[2] and len(set(bodies)) == len(bodies) - 1 == outcome.parts


async def test_outputs_refuse_non_http_targets(context) -> None:
    for kind in ["generic", *CHAT_KINDS]:
        with pytest.raises(TargetError):
            await output_class(kind)(context).validate(
                Target(kind, "ftp://127.0.0.1/x", (new_secret(),))
            )


async def test_redirects_are_not_followed(
    receiver: HttpReceiver, context, renderer, digest
) -> None:
    elsewhere = receiver.on("/elsewhere")
    url = receiver.on("/moved", reply(301, "", {"Location": elsewhere}))
    with pytest.raises(PermanentDeliveryError, match="redirect .* not followed"):
        await output_class("slack")(context).send(
            Target("slack", url), message_for(renderer, digest, "slack"), envelope=Envelope("x")
        )
    assert receiver.hits("/elsewhere") == []


async def test_timeouts_are_retryable(receiver, renderer, digest, tmp_path) -> None:
    from bot.outputs import HttpLimits, TargetPolicy
    from tests.outputs.conftest import settings_for
    from tests.receivers import hang

    url = receiver.on("/slow", hang(5))
    ctx = OutputContext(
        settings=settings_for(tmp_path),
        policy=TargetPolicy(allow_private=True),
        limits=HttpLimits(connect_timeout=0.5, total_timeout=0.5),
    )
    try:
        with pytest.raises(RetryableDeliveryError, match="within 0.5 s|timed out"):
            await output_class("mattermost")(ctx).send(
                Target("mattermost", url),
                message_for(renderer, digest, "mattermost"),
                envelope=Envelope("x"),
            )
    finally:
        await ctx.aclose()


async def test_generic_body_matches_the_published_schema(
    receiver, context, renderer, digest
) -> None:
    import json

    from jsonschema import Draft202012Validator

    from tests.processes import bot_env, cli

    code, printed, err = await cli("schema", env=bot_env(Path("/nonexistent")))
    assert code == 0, err
    validator = Draft202012Validator(json.loads(printed))
    validator.check_schema(validator.schema)
    url = receiver.on("/schema")
    await output_class("generic")(context).send(
        Target("generic", url, (new_secret(),)),
        message_for(renderer, digest, "generic"),
        envelope=Envelope("d"),
    )
    payload = receiver.hits("/schema")[0].json()
    assert list(validator.iter_errors(payload)) == []
    payload["digest"]["sections"][0]["new"][0]["standing"] = "rumoured"
    del payload["markdown"]
    assert len(list(validator.iter_errors(payload))) == 2


def test_each_chat_dialect_marks_up_its_own_way(renderer, digest) -> None:
    from bot.outputs.webhooks import chunks_of

    def text(kind: str) -> str:
        body = message_for(renderer, digest, kind).bodies
        return "\n".join(c.body for c in chunks_of(next(iter(body.values()))))

    slack, teams, chat = text("slack"), text("teams"), text("mattermost")
    assert (
        "*Where it stands (2 December 2025):*" in slack
        and "**Where it stands (2 December 2025):**" in teams
        and "**Where it stands (2 December 2025):**" in chat
    )
    cited = "Source: French-language news report of 2 December 2025."
    assert cited in slack and cited in teams and cited in chat
    assert "report-2025-12-02" not in slack + teams + chat  # never the internal id


async def test_teams_card_shows_a_hostile_title_as_text_and_keeps_source_links(
    state_dir, receiver, context, renderer
) -> None:
    from bot.digest import ReaderOptions, Window, compose
    from bot.state import load_state
    from tests.conftest import extra_development, write_developments
    from tests.outputs.conftest import NOW

    title = "[x](https://evil.example) <script> **loud** @everyone"
    write_developments(
        state_dir,
        extra_development("hostile", title_en=title, recorded="2025-12-02T13:00:00Z"),
    )
    sources = (state_dir / "sources.yaml").read_text(encoding="utf-8")
    (state_dir / "sources.yaml").write_text(
        sources.replace(
            "    language: fr\n", "    language: fr\n    url: https://news.example/report\n", 1
        ),
        encoding="utf-8",
    )
    digest = compose(
        load_state(state_dir), ReaderOptions(timezone="Europe/Paris"), Window.ending(NOW)
    )
    url = receiver.on("/teams-hostile")
    await output_class("teams")(context).send(
        Target("teams", url), message_for(renderer, digest, "teams"), envelope=Envelope("dlv_h")
    )
    (request,) = receiver.hits("/teams-hostile")
    text = "\n".join(b["text"] for b in request.json()["attachments"][0]["content"]["body"])
    # the title reads the same, but `](` and `<s` are broken by a zero-width space and the
    # emphasis marks are look-alikes: no link, tag or bold from state text
    zw = "\u200b"
    assert f"[x]{zw}(https://evil.example) <{zw}script> ∗∗loud∗∗ @{zw}everyone" in text
    assert "](https://evil.example" not in text and "<script" not in text
    # the bot's own link to a source stays a live link
    assert "](https://news.example/report)" in text
