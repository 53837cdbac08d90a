"""Public email sign-up over real HTTP and a real SMTP server: confirmation, limits,
expiry, preferences, and the preferences link in every digest footer."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import httpx
import pytest

from bot.settings import Settings
from bot.store import states
from bot.store import subscriptions as subs
from tests.conftest import SEED_STATE
from tests.web.conftest import served

PUBLIC = "https://briefing.example.org"


def settings(tmp_path, smtp_port: int, **values: object) -> Settings:
    defaults: dict[str, object] = {
        "home": tmp_path / "home", "public_url": PUBLIC, "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port, "smtp_security": "none", "mail_dir": tmp_path / "mail",
        "mail_from": "Briefing <briefing@example.org>", "secret_key": None,
    }  # fmt: skip
    return Settings(_env_file=None, **{**defaults, **values})  # type: ignore[call-arg]


async def mails(handler, count: int) -> list:
    for _ in range(200):
        if len(handler.messages) >= count:
            break
        await asyncio.sleep(0.05)
    return [message_from_bytes(m.original_content, policy=default_policy) for m in handler.messages]


def link_in(mail) -> str:
    text = mail.get_body(("plain",)).get_content()
    match = re.search(r"https://briefing\.example\.org(/confirm/\S+)", text)
    assert match, text
    return match.group(1)


async def test_sign_up_confirm_change_and_leave(db, tmp_path, smtp) -> None:
    port, handler = smtp
    await states.import_state(db, SEED_STATE, now=datetime.now(UTC))
    async with served(db, settings=settings(tmp_path, port)) as server:
        base = server.url
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            form = await client.get("/subscribe?lang=fr")
            assert form.status_code == 200 and "Recevoir le briefing" in form.text
            asked = await client.post(
                "/subscribe",
                json={"email": "Reader@Example.org", "topics": ["military", "talks"],
                      "locale": "fr", "timezone": "Europe/Paris", "at": "06:45"},
            )  # fmt: skip
            assert asked.status_code == 202 and asked.json()["status"] == "pending"
            [mail] = await mails(handler, 1)
            assert mail["To"] == "Reader@example.org" and "Confirmez" in mail["Subject"]
            path = link_in(mail)
            assert await subs.list_all(db) == []  # nothing until the reader confirms
            shown = await client.get(path)
            assert shown.status_code == 200 and 'id="confirm"' in shown.text
            assert await subs.list_all(db) == []  # a GET changes nothing
            done = await client.post(path)
            assert done.status_code == 200 and "Vous êtes abonné" in done.text
            [sub] = await subs.list_all(db)
            assert (sub.kind, sub.address, sub.topics, sub.locale, sub.timezone, sub.cron) == (
                "email", "Reader@Example.org", ("military", "talks"), "fr", "Europe/Paris",
                "45 6 * * *",
            )  # fmt: skip
            assert (await client.post(path)).status_code == 404  # used once
            # asking again for the subscribed address sends nothing, and says the same
            again = await client.post(
                "/subscribe", json={"email": "reader@example.org", "locale": "fr"}
            )
            assert again.status_code == 202 and again.json() == asked.json()
            await asyncio.sleep(0.3)
            assert len(handler.messages) == 1
            preferences = re.search(r'href="(/preferences/[^"]+)"', done.text)
            assert preferences
            page = await client.get(preferences.group(1))
            assert page.status_code == 200 and 'value="06:45"' in page.text
            changed = await client.post(
                preferences.group(1),
                data={"topics": ["sanctions"], "locale": "en", "timezone": "UTC", "at": "08:00"},
            )
            assert changed.status_code == 200 and "Your preferences are saved" in changed.text
            sub = await subs.get(db, sub.id)
            assert (sub.topics, sub.locale, sub.timezone, sub.cron) == (
                ("sanctions",), "en", "UTC", "0 8 * * *",
            )  # fmt: skip
            bad = await client.post(preferences.group(1), data={"timezone": "Mars/Base"})
            assert bad.status_code == 422 and "Mars/Base" in bad.text
            forged = await client.get(preferences.group(1)[:-3] + "abc")
            assert forged.status_code == 404
            left = await client.post(preferences.group(1) + "/leave")
            assert left.status_code == 200 and "You are unsubscribed" in left.text
            assert await subs.list_all(db) == []


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_bad_input_is_named(db, tmp_path, smtp) -> None:
    port, handler = smtp
    async with (
        served(db, settings=settings(tmp_path, port)) as server,
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
    ):
        for body, named in [
            ({"email": "not-an-address"}, "not-an-address"),
            ({"email": "a@example.org", "topics": ["weather"]}, "weather"),
            ({"email": "a@example.org", "at": "7 o'clock"}, "--at"),
            ({"email": "a@example.org", "timezone": "Nowhere/Land"}, "Nowhere/Land"),
            ({"topics": "all"}, "email"),
            ({"email": 7}, "email"),
        ]:
            answer = await client.post("/subscribe", json=body)
            assert answer.status_code == 422, body
            assert answer.headers["content-type"] == "application/problem+json"
            assert named in answer.json()["detail"], (body, answer.json())
        page = await client.post("/subscribe", data={"email": "a@example.org", "at": "99:99"})
        assert page.status_code == 422 and "99:99" in page.text and "<form" in page.text
    assert handler.messages == []


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_limits_per_address_and_per_client(db, tmp_path, smtp) -> None:
    port, handler = smtp
    config = settings(
        tmp_path, port, signup_per_address=2, signup_per_client=3,
        trusted_proxies="127.0.0.1",
    )  # fmt: skip
    async with (
        served(db, settings=config) as server,
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
    ):

        async def ask(email: str, client_ip: str) -> int:
            answer = await client.post(
                "/subscribe", json={"email": email}, headers={"X-Forwarded-For": client_ip}
            )
            return answer.status_code

        assert [await ask("a@example.org", f"192.0.2.{n}") for n in range(3)] == [
            202, 202, 429,
        ]  # fmt: skip
        assert [await ask(f"b{n}@example.org", "198.51.100.7") for n in range(4)] == [
            202, 202, 202, 429,
        ]  # fmt: skip
        # a spoofed header from a proxy we do not trust counts for nothing
        spoofed = await client.post(
            "/subscribe", json={"email": "c@example.org"},
            headers={"X-Forwarded-For": "198.51.100.99, 203.0.113.5"},
        )  # fmt: skip
        assert spoofed.status_code == 202
    await mails(handler, 6)
    assert len(handler.messages) == 6


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_without_trusted_proxies_the_header_is_ignored(db, tmp_path, smtp) -> None:
    port, handler = smtp
    config = settings(tmp_path, port, signup_per_client=2)
    async with (
        served(db, settings=config) as server,
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
    ):
        codes = [
            (
                await client.post(
                    "/subscribe",
                    json={"email": f"d{n}@example.org"},
                    headers={"X-Forwarded-For": f"192.0.2.{n}"},
                )
            ).status_code
            for n in range(3)
        ]
    assert codes == [202, 202, 429]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_an_unconfirmed_request_expires_after_48_hours(db, tmp_path, smtp) -> None:
    port, handler = smtp
    moment = [datetime.now(UTC)]
    async with (
        served(db, settings=settings(tmp_path, port), clock=lambda: moment[0]) as server,
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
    ):
        await client.post("/subscribe", json={"email": "late@example.org"})
        [mail] = await mails(handler, 1)
        path = link_in(mail)
        moment[0] += timedelta(hours=47)
        assert (await client.get(path)).status_code == 200
        moment[0] += timedelta(hours=1, seconds=1)
        late = await client.post(path)
        assert late.status_code == 404 and "48 hours" in late.text
    assert await subs.list_all(db) == []


async def test_every_digest_footer_links_the_readers_preferences(db, tmp_path) -> None:
    from bot.delivery import render_message
    from bot.digest import DigestRenderer, ReaderOptions, Window, compose
    from bot.outputs import Envelope, HttpLimits, OutputContext, Target, TargetPolicy, output_class
    from bot.state import load_state

    new = subs.NewSubscription(
        name="r", kind="email", address="reader@example.org", secrets=(), topics=None,
        locale="en", timezone="UTC", cron="0 7 * * *", skip_empty=False, next_fire_at=None,
    )  # fmt: skip
    sub = await subs.add(db, new, now=datetime.now(UTC))
    digest = compose(
        load_state(SEED_STATE),
        ReaderOptions(),
        Window.ending(datetime(2025, 12, 2, 18, tzinfo=UTC)),
    )
    bodies = {}
    for public_url in (PUBLIC, None):
        config = settings(tmp_path, 25, public_url=public_url)
        context = OutputContext(settings=config, policy=TargetPolicy(), limits=HttpLimits())
        output = output_class("email")(context)
        data = output.to_bytes(  # type: ignore[attr-defined]
            Target("email", sub.address),
            render_message(DigestRenderer(), digest, type(output)),
            envelope=Envelope("dlv_x", unsubscribe_token=sub.unsubscribe_token),
        )
        mail = message_from_bytes(data, policy=default_policy)
        bodies[public_url] = (
            mail.get_body(("plain",)).get_content(),
            mail.get_body(("html",)).get_content(),
        )
    text, html = bodies[PUBLIC]
    link = re.search(r"Your preferences \(topics, language, timezone, hour\): (\S+)", text)
    assert link and link.group(1).startswith(f"{PUBLIC}/preferences/")
    assert f'id="preferences" href="{link.group(1)}"' in html
    assert "/unsubscribe/" in text  # RFC 8058's link stays
    text, html = bodies[None]  # no public URL: no web page to link to
    assert "preferences" not in text.lower() and 'id="preferences"' not in html
    async with (
        served(db, settings=settings(tmp_path, 25)) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        page = await client.get(server.url + link.group(1).removeprefix(PUBLIC))
    assert page.status_code == 200 and "reader@example.org" in page.text


def test_a_bad_trusted_proxy_is_named() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'nope' is not an IP address or network"):
        Settings(_env_file=None, trusted_proxies="10.0.0.0/8, nope")  # type: ignore[call-arg]
