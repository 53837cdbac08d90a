"""The admin page and the public sign-up in a real headless Chromium, at desktop and phone
width: every click a person would make, with a real webhook receiver and a real SMTP server.

``BRIEFING_SCREENSHOTS=docs`` saves the admin page as ``docs/admin.png`` (the README's)."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from playwright.async_api import Page

from bot.settings import Settings
from bot.store import states
from bot.store import subscriptions as subs
from bot.web import build_app, start_http
from tests.browser import chromium
from tests.conftest import SEED_STATE
from tests.receivers import free_port
from tests.web.conftest import served, web_for

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
TOKEN = "browser-admin-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]
PHONE = {"width": 375, "height": 740}


async def no_sideways_scroll(page: Page, path: str) -> None:
    await page.set_viewport_size(PHONE)
    await page.goto(path)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], (path, width)


def watch_policy(page: Page) -> list[str]:
    """The Content-Security-Policy complaints Chromium prints on ``page``."""
    complaints: list[str] = []
    page.on(
        "console",
        lambda m: complaints.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return complaints


async def test_admin_flow(db, tmp_path, receiver) -> None:
    url = receiver.on("/hook")
    await states.import_state(db, SEED_STATE, now=datetime.now(UTC))
    config = Settings(
        _env_file=None, home=tmp_path / "home", api_token=TOKEN, allow_private_targets=True,
        mail_dir=tmp_path / "mail",
    )  # type: ignore[call-arg]  # fmt: skip
    async with served(db, settings=config) as server, chromium() as browser:
        base = server.url
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, base_url=base)
        complaints = watch_policy(page)
        await page.goto("/admin")
        assert page.url == f"{base}/admin/login"
        await page.fill("#token", "not the token")
        await page.click("#sign-in")
        await page.wait_for_selector("text=Wrong token.")
        await page.fill("#token", TOKEN)
        await page.click("#sign-in")
        await page.wait_for_selector("text=No subscriptions yet.")
        # the page's styles apply under its policy
        colour = await page.evaluate(
            "getComputedStyle(document.querySelector('header')).backgroundColor"
        )
        assert colour == "rgb(26, 61, 109)"

        await page.select_option("#kind", "generic")
        await page.fill("#address", url)
        await page.fill("#topics", "military,sanctions")
        await page.fill("#name", "Newsroom hook")
        await page.click("#create")
        await page.wait_for_selector("text=Subscription 1 added.")
        assert "whsec_" in await page.inner_text("main")  # the generated secret, once
        row = page.locator("#subscription-1")
        assert "active" in await row.inner_text() and "Newsroom hook" in await row.inner_text()

        await page.click("#test-1")
        await page.wait_for_selector("text=Test to subscription 1: delivered — 200")
        assert len(receiver.hits("/hook")) == 1
        await page.click("#send-1")
        await page.wait_for_selector("text=Send to subscription 1: delivered")
        assert len(receiver.hits("/hook")) == 2
        assert "delivered" in await page.locator("#subscription-1").inner_text()

        await page.click("text=Delivery log")
        log = page.locator("#deliveries tbody tr")
        assert await log.count() == 1
        assert re.search(r"manual\s+delivered\s+1\s+200", await log.first.inner_text())

        await page.goto("/admin")
        await page.click("#pause-1")
        await page.wait_for_selector("text=Subscription 1 is now paused.")
        assert (await subs.get(db, 1)).status == "paused"
        assert await page.locator("#resume-1").count() == 1
        if folder := os.environ.get("BRIEFING_SCREENSHOTS"):
            (ROOT / folder).mkdir(exist_ok=True)
            await page.screenshot(path=str(ROOT / folder / "admin.png"), full_page=True)

        # the preview: the HTML email in a sandboxed frame, the other channels as text
        await page.goto("/admin/preview?subscription=1&channel=email")
        frame = page.frame_locator("#email-frame")
        await frame.locator("text=Pokrovsk").first.wait_for()
        assert await page.get_attribute("#email-frame", "sandbox") == ""
        await page.select_option("#channel", "slack")
        await page.click("#show")
        assert '"blocks"' in await page.inner_text("#preview-text")

        # a form without the session's CSRF token is refused and changes nothing
        await page.goto("/admin")
        await page.evaluate("document.querySelector('#add input[name=csrf]').value = 'forged'")
        await page.select_option("#kind", "email")
        await page.fill("#address", "someone@example.org")
        await page.click("#create")
        await page.wait_for_selector("text=This form has expired")
        assert [s.id for s in await subs.list_all(db)] == [1]

        await page.goto("/admin")
        await page.click("#lang-fr")
        await page.wait_for_selector("text=Abonnements")
        assert "suspendu" in await page.locator("#subscription-1").inner_text()
        for path in ("/admin", "/admin/deliveries", "/admin/preview?subscription=1"):
            await no_sideways_scroll(page, path)
        assert complaints == []


async def test_public_sign_up_flow(db, tmp_path, smtp) -> None:
    smtp_port, handler = smtp
    await states.import_state(db, SEED_STATE, now=datetime.now(UTC))
    port = free_port()
    config = Settings(
        _env_file=None, home=tmp_path / "home", public_url=f"http://127.0.0.1:{port}",
        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_security="none",
        mail_from="Briefing <briefing@example.org>", signup_per_address=2,
    )  # type: ignore[call-arg]  # fmt: skip
    server = await start_http(build_app(web_for(db, settings=config)), host="127.0.0.1", port=port)
    try:
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 1024, "height": 900})
            complaints = watch_policy(page)
            await page.goto(f"{server.url}/subscribe?lang=fr")
            await page.fill("#email", "lectrice@example.org")
            await page.uncheck("input[value=politics]")
            await page.fill("#timezone", "Europe/Paris")
            await page.fill("#at", "06:30")
            await page.click("#subscribe")
            await page.wait_for_selector("text=Consultez votre boîte de réception")
            for _ in range(200):
                if handler.messages:
                    break
                await asyncio.sleep(0.05)
            mail = message_from_bytes(handler.messages[0].original_content, policy=default_policy)
            text = mail.get_body(("plain",)).get_content()
            link = re.search(r"http://127\.0\.0\.1:\d+/confirm/\S+", text)
            assert link, text
            await page.goto(link.group())
            assert await subs.list_all(db) == []  # opening the link changes nothing
            await page.click("#confirm")
            await page.wait_for_selector("text=Vous êtes abonné")
            [sub] = await subs.list_all(db)
            assert (sub.topics, sub.locale, sub.timezone, sub.cron) == (
                ("talks", "sanctions", "military"), "fr", "Europe/Paris", "30 6 * * *",
            )  # fmt: skip

            await page.click("#preferences")
            await page.wait_for_selector("text=Vos préférences")
            await page.check("input[value=politics]")
            await page.uncheck("input[value=talks]")
            await page.select_option("#locale", "en")
            await page.fill("#at", "08:15")
            await page.click("#save")
            await page.wait_for_selector("text=Your preferences are saved.")
            sub = await subs.get(db, sub.id)
            assert (sub.topics, sub.locale, sub.cron) == (
                ("sanctions", "military", "politics"), "en", "15 8 * * *",
            )  # fmt: skip
            preferences = page.url
            await no_sideways_scroll(page, preferences)
            await page.set_viewport_size({"width": 1024, "height": 900})
            await page.click("#leave")
            await page.wait_for_selector("text=You are unsubscribed")
            assert await subs.list_all(db) == []

            # a third request for one address in a day is refused
            for _ in range(3):
                await page.goto(f"{server.url}/subscribe")
                await page.fill("#email", "again@example.org")
                await page.click("#subscribe")
            await page.wait_for_selector("text=Too many requests")
            await no_sideways_scroll(page, f"{server.url}/subscribe")
            assert complaints == []
    finally:
        await server.close()
