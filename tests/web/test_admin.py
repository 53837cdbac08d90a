"""The admin page over real HTTP: off without a token, sign-in, CSRF, every action."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from bot.settings import Settings
from bot.store import outbox, states
from bot.store import subscriptions as subs
from tests.conftest import SEED_STATE
from tests.web.conftest import served

TOKEN = "admin-token-for-tests-0123456789"


def settings(tmp_path, **values: object) -> Settings:
    defaults: dict[str, object] = {
        "home": tmp_path / "home", "api_token": TOKEN, "allow_private_targets": True,
        "mail_dir": tmp_path / "mail", "mail_from": "Briefing <briefing@example.org>",
    }  # fmt: skip
    return Settings(_env_file=None, **{**defaults, **values})  # type: ignore[call-arg]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def signed_in(client: httpx.AsyncClient, base: str) -> str:
    page = await client.get(f"{base}/admin/login")
    done = await client.post(
        f"{base}/admin/login", data={"csrf": csrf_of(page.text), "token": TOKEN}
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin"
    index = await client.get(f"{base}/admin")
    assert index.status_code == 200
    return csrf_of(index.text)


async def test_without_a_token_the_admin_page_is_off_and_says_so(db, tmp_path) -> None:
    async with (
        served(db, settings=settings(tmp_path, api_token=None)) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        for path in ("/admin", "/admin/login", "/admin/deliveries"):
            page = await client.get(server.url + path)
            assert page.status_code == 404 and "BRIEFING_API_TOKEN" in page.text
        posted = await client.post(server.url + "/admin/login", data={"token": ""})
        assert posted.status_code == 404


async def test_sign_in_session_cookie_and_csrf(db, tmp_path) -> None:
    config = settings(tmp_path, public_url="https://briefing.example.org")
    async with served(db, settings=config) as server, httpx.AsyncClient(timeout=60) as client:
        base = server.url
        first = await client.get(f"{base}/admin")
        assert first.status_code == 303 and first.headers["location"] == "/admin/login"
        login = await client.get(f"{base}/admin/login")
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
        policy = login.headers["content-security-policy"]
        assert "script-src" not in policy and "default-src 'none'" in policy
        # the cookie is Secure (https public URL): httpx over http would not send it back
        client.cookies.set("briefing_admin", login.cookies["briefing_admin"])
        csrf = csrf_of(login.text)
        wrong = await client.post(f"{base}/admin/login", data={"csrf": csrf, "token": "nope"})
        assert wrong.status_code == 401 and "Wrong token" in wrong.text
        forged = await client.post(f"{base}/admin/login", data={"token": TOKEN})
        assert forged.status_code == 403
        good = await client.post(f"{base}/admin/login", data={"csrf": csrf, "token": TOKEN})
        assert good.status_code == 303
        client.cookies.set("briefing_admin", good.cookies["briefing_admin"])
        index = await client.get(f"{base}/admin")
        assert index.status_code == 200 and "No subscriptions yet" in index.text
        # a forged form (no token, or another session's) is refused and changes nothing
        add = {"kind": "email", "address": "a@example.org", "csrf": csrf}  # the old token
        refused = await client.post(f"{base}/admin/subscriptions", data=add)
        assert refused.status_code == 403
        assert await subs.list_all(db) == []
        # a forged cookie is a signed-out visitor
        client.cookies.set("briefing_admin", "forged")
        assert (await client.get(f"{base}/admin")).status_code == 303


async def test_add_validates_like_the_cli_then_acts(db, tmp_path, receiver) -> None:
    url = receiver.on("/hook")
    await states.import_state(db, SEED_STATE, now=datetime.now(UTC))
    async with (
        served(db, settings=settings(tmp_path)) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        base = server.url
        csrf = await signed_in(client, base)
        bad = {"csrf": csrf, "kind": "generic", "address": "ftp://nowhere", "at": "25:00"}
        await client.post(f"{base}/admin/subscriptions", data=bad)
        page = await client.get(f"{base}/admin")
        assert "--at &#39;25:00&#39;" in page.text and await subs.list_all(db) == []
        ok = {"csrf": csrf, "kind": "generic", "address": url, "topics": "military",
              "locale": "fr", "timezone": "Europe/Paris", "at": "06:30", "name": "hook"}  # fmt: skip
        await client.post(f"{base}/admin/subscriptions", data=ok)
        page = await client.get(f"{base}/admin")
        assert "Subscription 1 added" in page.text and "whsec_" in page.text  # shown once
        assert "whsec_" not in (await client.get(f"{base}/admin")).text
        [sub] = await subs.list_all(db)
        assert (sub.kind, sub.topics, sub.locale, sub.cron) == (
            "generic", ("military",), "fr", "30 6 * * *",
        )  # fmt: skip
        await client.post(f"{base}/admin/subscriptions/{sub.id}/test", data={"csrf": csrf})
        page = await client.get(f"{base}/admin")
        assert "Test to subscription 1: delivered — 200" in page.text
        assert len(receiver.hits("/hook")) == 1
        assert await outbox.listing(db) == []  # a test is not a delivery of the digest
        await client.post(f"{base}/admin/subscriptions/{sub.id}/send", data={"csrf": csrf})
        page = await client.get(f"{base}/admin")
        assert "Send to subscription 1: delivered — delivered 200" in page.text
        assert len(receiver.hits("/hook")) == 2
        log = await client.get(f"{base}/admin/deliveries?subscription={sub.id}")
        assert 'class="status-delivered"' in log.text and "manual" in log.text
        await client.post(f"{base}/admin/subscriptions/{sub.id}/pause", data={"csrf": csrf})
        assert (await subs.get(db, sub.id)).status == "paused"
        await client.post(f"{base}/admin/subscriptions/{sub.id}/resume", data={"csrf": csrf})
        assert (await subs.get(db, sub.id)).status == "active"
        await client.post(f"{base}/admin/subscriptions/{sub.id}/remove", data={"csrf": csrf})
        assert await subs.list_all(db) == []
        await client.post(f"{base}/admin/subscriptions/99/pause", data={"csrf": csrf})
        assert "no subscription 99" in (await client.get(f"{base}/admin")).text


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_ssrf_guard_and_preview(db, tmp_path) -> None:
    config = settings(tmp_path, allow_private_targets=False)
    async with served(db, settings=config) as server, httpx.AsyncClient(timeout=60) as client:
        base = server.url
        csrf = await signed_in(client, base)
        hook = {"csrf": csrf, "kind": "generic", "address": "https://127.0.0.1/hook"}
        await client.post(f"{base}/admin/subscriptions", data=hook)
        page = await client.get(f"{base}/admin")
        assert "Problem:" in page.text and await subs.list_all(db) == []
        preview = await client.get(f"{base}/admin/preview?channel=email&locale=fr")
        assert (
            'sandbox=""' in preview.text
            and "frame-src 'self'" in preview.headers["content-security-policy"]
        )
        frame = await client.get(f"{base}/admin/preview/email?channel=email&locale=fr")
        assert frame.headers["x-frame-options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in frame.headers["content-security-policy"]
        assert "Pokrovsk" in frame.text
        slack = await client.get(f"{base}/admin/preview?channel=slack&locale=en")
        assert "blocks" in slack.text
        bad = await client.get(f"{base}/admin/preview?channel=carrier-pigeon")
        assert "unknown channel" in bad.text
        french = await client.get(f"{base}/admin/lang/fr")
        assert french.status_code == 303
        assert "Abonnements" in (await client.get(f"{base}/admin")).text


async def test_ids_past_the_database_integers_are_unknown_not_errors(db, tmp_path) -> None:
    too_big = 2**31  # past PostgreSQL's INTEGER
    async with served(db, settings=settings(tmp_path)) as server, httpx.AsyncClient() as client:
        base = server.url
        csrf = await signed_in(client, base)
        done = await client.post(f"{base}/admin/subscriptions/{too_big}/pause", data={"csrf": csrf})
        assert done.status_code == 303
        assert f"no subscription {too_big}" in (await client.get(f"{base}/admin")).text
        log = await client.get(f"{base}/admin/deliveries?subscription={too_big}")
        assert log.status_code == 200 and f"no subscription {too_big}" in log.text
        for path in ("preview", "preview/email"):
            shown = await client.get(f"{base}/admin/{path}?channel=email&subscription={too_big}")
            assert shown.status_code == 200 and f"no subscription {too_big}" in shown.text, path
