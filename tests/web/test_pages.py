"""The HTTP side of ``briefing run``: one-click unsubscribe, its page in a real browser, health."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy

import httpx
import pytest

from bot.digest import DigestRenderer, ReaderOptions, Window, compose
from bot.store import subscriptions as subs
from tests.browser import chromium
from tests.web.conftest import served


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def site(db):
    async with served(db) as server:
        yield server.url, db


async def reader(db, locale: str = "en") -> subs.Subscription:
    new = subs.NewSubscription(
        name="r",
        kind="email",
        address="reader@example.org",
        secrets=(),
        topics=None,
        locale=locale,
        timezone="UTC",
        cron="0 7 * * *",
        skip_empty=False,
        next_fire_at=None,
    )
    return await subs.add(db, new, now=now())


async def test_one_click_unsubscribe_per_rfc_8058(site) -> None:
    base, db = site
    sub = await reader(db)
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{base}/unsubscribe/{sub.unsubscribe_token}")
        assert page.status_code == 200 and '<form method="post">' in page.text
        assert (await subs.get(db, sub.id)).status == "active"  # a GET changes nothing
        done = await client.post(
            f"{base}/unsubscribe/{sub.unsubscribe_token}",
            content="List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200 and "You are unsubscribed" in done.text
        again = await client.post(f"{base}/unsubscribe/{sub.unsubscribe_token}")
        assert again.status_code == 200
        unknown = await client.get(f"{base}/unsubscribe/nope")
        assert unknown.status_code == 404 and "Unknown link" in unknown.text
        health = await client.get(f"{base}/healthz")
        assert health.json() == {"status": "ok"}
    with pytest.raises(Exception, match="no subscription"):
        await subs.get(db, sub.id)
    assert [s.id for s in await subs.list_all(db)] == []


async def test_the_email_link_leads_to_the_right_subscription(site, tmp_path) -> None:
    from bot.delivery import render_message
    from bot.outputs import Envelope, HttpLimits, OutputContext, Target, TargetPolicy, output_class
    from bot.state import load_state
    from tests.conftest import SEED_STATE
    from tests.outputs.conftest import settings_for

    base, db = site
    sub = await reader(db, locale="fr")
    context = OutputContext(
        settings=settings_for(tmp_path, public_url="https://briefing.example.org"),
        policy=TargetPolicy(),
        limits=HttpLimits(),
    )
    output = output_class("email")(context)
    digest = compose(
        load_state(SEED_STATE),
        ReaderOptions(locale="fr"),
        Window.ending(datetime(2025, 12, 2, 18, tzinfo=UTC)),
    )
    data = output.to_bytes(
        Target("email", sub.address),
        render_message(DigestRenderer(), digest, type(output)),  # type: ignore[attr-defined]
        envelope=Envelope("dlv_x", unsubscribe_token=sub.unsubscribe_token),
    )
    link = (
        message_from_bytes(data, policy=default_policy)["List-Unsubscribe"]
        .split(",")[0]
        .strip("<> ")
    )
    assert link.startswith("https://briefing.example.org/unsubscribe/")
    path = link.removeprefix("https://briefing.example.org")
    async with httpx.AsyncClient() as client:
        response = await client.post(base + path, content="List-Unsubscribe=One-Click")
    assert response.status_code == 200 and "Désabonnement confirmé" in response.text


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_unsubscribe_page_in_a_browser(site) -> None:
    base, db = site
    sub = await reader(db, locale="fr")
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 375, "height": 700})
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        response = await page.goto(f"{base}/unsubscribe/{sub.unsubscribe_token}")
        assert response is not None and "frame-ancestors 'none'" in (
            await response.header_value("content-security-policy") or ""
        )
        assert await page.title() == "Désabonnement"
        # the policy lets the page's own styles apply
        background = await page.evaluate(
            "getComputedStyle(document.querySelector('main')).backgroundColor"
        )
        assert background == "rgb(255, 255, 255)"
        assert (await subs.get(db, sub.id)).status == "active"
        await page.click("#unsubscribe")  # form-action 'self' lets the button post
        await page.wait_for_selector("text=Désabonnement confirmé")
        assert "reader@example.org" in await page.inner_text("main")
    assert [line for line in console if "Content Security Policy" in line] == []
    assert [s.id for s in await subs.list_all(db)] == []


@pytest.mark.parametrize("locale", ["en", "fr"])
async def test_html_email_reads_on_a_phone(seed_state, locale, tmp_path) -> None:
    """The HTML body fits a 375-pixel screen with no sideways scrolling and loads nothing."""
    digest = compose(
        seed_state,
        ReaderOptions(locale=locale, timezone="Europe/Paris"),
        Window.ending(datetime(2025, 12, 2, 18, tzinfo=UTC)),
    )
    html = DigestRenderer().render(digest, "html")
    requests: list[str] = []
    async with chromium() as browser:
        for width in (375, 1024):
            page = await browser.new_page(viewport={"width": width, "height": 800})
            page.on("request", lambda r: requests.append(r.url))
            await page.set_content(html)
            scroll_width = await page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, (width, scroll_width)
            text = await page.inner_text("body")
            assert (
                "Pokrovsk" in text
                and ("Chiffres clés" if locale == "fr" else "Key figures") in text
            )
            font = await page.evaluate(
                "parseFloat(getComputedStyle(document.querySelector('p')).fontSize)"
            )
            assert font >= 13
            await page.screenshot(
                path=str(tmp_path / f"email-{locale}-{width}.png"), full_page=True
            )
    assert [r for r in requests if not r.startswith(("about:", "data:"))] == []


async def test_a_webhook_subscriptions_page_never_shows_its_token(site) -> None:
    base, db = site
    new = subs.NewSubscription(
        name="hook", kind="slack", address="https://hooks.slack.com/services/T0/B0/PAGECANARY9",
        secrets=(), topics=None, locale="en", timezone="UTC", cron="0 7 * * *",
        skip_empty=False, next_fire_at=None,
    )  # fmt: skip
    sub = await subs.add(db, new, now=now())
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{base}/unsubscribe/{sub.unsubscribe_token}")
        done = await client.post(f"{base}/unsubscribe/{sub.unsubscribe_token}")
    assert page.status_code == done.status_code == 200
    assert "hooks.slack.com" in page.text and "PAGECANARY9" not in page.text + done.text
