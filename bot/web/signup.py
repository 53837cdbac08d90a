"""The public pages: email sign-up with a confirmation link, and the reader's preferences.

``/subscribe`` (an HTML form, or JSON) records the request and mails a link,
``{BRIEFING_PUBLIC_URL}/confirm/{token}``, valid 48 hours; its page shows a button whose
POST makes the subscription. An address that is already subscribed gets nothing, and the
answer is the same. Requests are limited per address (``BRIEFING_SIGNUP_PER_ADDRESS`` a
day) and per client (``BRIEFING_SIGNUP_PER_CLIENT`` an hour; the client read from
``X-Forwarded-For`` only behind ``BRIEFING_TRUSTED_PROXIES``). ``/preferences/{token}``
(the signed link in every digest's footer) changes topics, language, timezone and hour,
or leaves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot.errors import BriefingError
from bot.links import preferences_token, unsubscribe_token_of
from bot.outputs import make_context
from bot.outputs.email import EmailOutput
from bot.store import signups
from bot.store import subscriptions as subs
from bot.web import actions
from bot.web.clients import client_address
from bot.web.context import Web, WebContext
from bot.web.html import page
from bot.web.i18n import LOCALES, translator
from bot.web.problems import problem

log = logging.getLogger("briefing.web")
router = APIRouter(include_in_schema=False)
FIELDS = ("email", "topics", "locale", "timezone", "at")
_DAILY = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* \*$")
_sending: set[asyncio.Task[None]] = set()


def _wants_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json"


async def _fields(request: Request) -> dict[str, str | None]:
    """The posted fields as text (topics joined with commas); ``ValueError`` if the body
    is not a JSON object or a form."""
    if _wants_json(request):
        body = json.loads(await request.body() or b"null")
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        raw: dict[str, Any] = body
        topics = raw.get("topics")
        if isinstance(topics, list):
            raw = {**raw, "topics": ",".join(str(t) for t in topics)}
    else:
        form = await request.form()
        raw = {name: form.get(name) for name in FIELDS}
        raw["topics"] = ",".join(v for v in form.getlist("topics") if isinstance(v, str)) or None
    values: dict[str, str | None] = {}
    for name in FIELDS:
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: expected text")
        values[name] = value.strip() or None if value else None
    return values


async def _topics(web: WebContext, locale: str) -> list[tuple[str, str]]:
    state = await actions.current_state(web)
    return [(topic.id, getattr(topic.name, locale)) for topic in state.topics.values()]


def _lang(value: str | None, web: WebContext) -> str:
    return value if value in LOCALES else web.settings.default_locale


async def _form(
    web: WebContext,
    locale: str,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str | None] | None = None,
) -> Response:
    return page(
        web, "public/subscribe.html.j2", locale=locale, status=status, error=error,
        values={**dict.fromkeys(FIELDS), **(values or {})}, topics=await _topics(web, locale), locales=LOCALES,
        default_timezone=web.settings.default_timezone,
    )  # fmt: skip


@router.get("/subscribe")
async def subscribe_page(web: Web, lang: str | None = None) -> Response:
    return await _form(web, _lang(lang, web))


@router.post("/subscribe")
async def subscribe(request: Request, web: Web) -> Response:
    as_json = _wants_json(request)
    try:
        values = await _fields(request)
    except ValueError as exc:
        return (
            problem(422, str(exc))
            if as_json
            else await _form(web, _lang(None, web), status=422, error=str(exc))
        )
    locale = _lang(values["locale"], web)
    t = translator(locale)
    try:
        if not values["email"]:
            raise BriefingError("email: missing")
        target = await actions.validated(web, "email", values["email"], ())
        chosen, language, zone, crontab = await actions.options(
            web, topics=values["topics"], locale=values["locale"], timezone=values["timezone"],
            at=values["at"],
        )  # fmt: skip
    except BriefingError as exc:
        if as_json:
            return problem(422, str(exc))
        return await _form(web, locale, status=422, error=str(exc), values=values)
    now = web.clock()
    client = client_address(request, web.settings.trusted_proxies)
    if await _too_many(web, email=target.address, client=client):
        log.info("sign-up refused: too many requests (client %s)", client)
        if as_json:
            return problem(429, t("too_many"), headers={"Retry-After": "3600"})
        return await _form(web, locale, status=429, error=t("too_many"), values=values)
    wanted = signups.SignUp(target.address, chosen, language, zone, crontab)
    known = await signups.subscribed(web.db, target.address)
    token = await signups.request(web.db, wanted, client=client, now=now, send=not known)
    if token is not None:
        task = asyncio.create_task(_mail(web, wanted, token))
        _sending.add(task)
        task.add_done_callback(_sending.discard)
    if as_json:
        return JSONResponse(
            {"status": "pending", "detail": t("check_inbox_text")},
            status_code=202,
            headers={"Cache-Control": "no-store"},
        )
    return page(
        web, "public/message.html.j2", locale=locale, title=t("check_inbox"),
        text=t("check_inbox_text"),
    )  # fmt: skip


async def _too_many(web: WebContext, *, email: str, client: str) -> bool:
    """Whether ``client`` asked too often this hour, or ``email`` was asked for too often today."""
    now, settings = web.clock(), web.settings
    by_client = await signups.recent(web.db, client=client, since=now - timedelta(hours=1))
    by_address = await signups.recent(web.db, email=email, since=now - timedelta(days=1))
    return by_client >= settings.signup_per_client or by_address >= settings.signup_per_address


def confirmation_link(web: WebContext, token: str) -> str:
    base = web.settings.public_url or f"http://{web.settings.http_host}:{web.settings.http_port}"
    return f"{base.rstrip('/')}/confirm/{token}"


async def _mail(web: WebContext, wanted: signups.SignUp, token: str) -> None:
    """Mail the confirmation link through the email output (logged once if it fails)."""
    t = translator(wanted.locale)
    link = confirmation_link(web, token)
    mail = EmailMessage()
    mail["Subject"] = t("mail_subject")
    mail.set_content(t("mail_text", email=wanted.email, link=link))
    context = make_context(web.settings)
    try:
        output = EmailOutput(context)
        try:
            await output.send_mail(wanted.email, mail, mail_id=f"signup_{token[:12]}")
        finally:
            await output.aclose()
        log.info("sign-up confirmation sent")
    except Exception as exc:  # a setting or the SMTP side: logged, the request stays pending
        log.warning("could not send a sign-up confirmation: %s", exc)
    finally:
        await context.aclose()


def _unknown(web: WebContext, locale: str | None = None) -> Response:
    t = translator(_lang(locale, web))
    return page(
        web, "public/message.html.j2", locale=_lang(locale, web), status=404,
        title=t("unknown_link"), text=t("unknown_link_text"),
    )  # fmt: skip


@router.get("/confirm/{token}")
async def confirm_page(token: str, web: Web) -> Response:
    """A page with a button: a GET changes nothing (link scanners follow links)."""
    wanted = await signups.pending(web.db, token, now=web.clock())
    if wanted is None:
        return _unknown(web)
    return page(web, "public/confirm.html.j2", locale=wanted.locale, email=wanted.email)


@router.post("/confirm/{token}")
async def confirm(token: str, web: Web) -> Response:
    now = web.clock()
    wanted = await signups.pending(web.db, token, now=now)
    if wanted is None or not await signups.confirmed(web.db, token, now=now):
        return _unknown(web)
    t = translator(wanted.locale)
    preferences = None
    if not await signups.subscribed(web.db, wanted.email):
        sub, _ = await actions.subscribe(
            web, kind="email", address=wanted.email, secret=None,
            topics=",".join(wanted.topics) if wanted.topics else None, locale=wanted.locale,
            timezone=wanted.timezone, at=None, cron=wanted.cron, name=None,
        )  # fmt: skip
        log.info("subscription %s confirmed by the reader", sub.id)
        preferences = "/preferences/" + preferences_token(web.settings, sub.unsubscribe_token)
    return page(
        web, "public/message.html.j2", locale=wanted.locale, title=t("confirmed_title"),
        text=t("confirmed_text", email=wanted.email), preferences=preferences,
    )  # fmt: skip


async def _reader(web: WebContext, token: str) -> subs.Subscription | None:
    unsubscribe = unsubscribe_token_of(web.settings, token)
    return await subs.by_token(web.db, unsubscribe) if unsubscribe else None


def _at(cron: str) -> str:
    match = _DAILY.match(cron)
    return f"{int(match.group(2)):02d}:{int(match.group(1)):02d}" if match else ""


def _preferences(
    web: WebContext,
    sub: subs.Subscription,
    topics: list[tuple[str, str]],
    *,
    status: int = 200,
    saved: bool = False,
    error: str | None = None,
) -> Response:
    return page(
        web, "public/preferences.html.j2", locale=sub.locale, status=status, sub=sub,
        request_path="/preferences/" + preferences_token(web.settings, sub.unsubscribe_token),
        topics=topics, chosen=set(sub.topics or [t for t, _ in topics]), at=_at(sub.cron),
        locales=LOCALES, saved=saved, error=error,
    )  # fmt: skip


def _left(web: WebContext, sub: subs.Subscription) -> Response:
    t = translator(sub.locale)
    return page(
        web, "public/message.html.j2", locale=sub.locale, title=t("left_title"),
        text=t("left_text", email=sub.address),
    )  # fmt: skip


@router.get("/preferences/{token}")
async def preferences_page(token: str, web: Web) -> Response:
    sub = await _reader(web, token)
    if sub is None:
        return _unknown(web)
    if sub.status == subs.REMOVED:
        return _left(web, sub)
    return _preferences(web, sub, await _topics(web, sub.locale))


@router.post("/preferences/{token}")
async def preferences(token: str, request: Request, web: Web) -> Response:
    sub = await _reader(web, token)
    if sub is None:
        return _unknown(web)
    if sub.status == subs.REMOVED:
        return _left(web, sub)
    form = await request.form()
    topics = await _topics(web, sub.locale)
    chosen = [v for v in form.getlist("topics") if isinstance(v, str)]
    every = {t for t, _ in topics}
    value = {
        name: (v.strip() or None) if isinstance(v := form.get(name), str) else None
        for name in ("locale", "timezone", "at")
    }
    try:
        sub = await actions.update_options(
            web, sub, topics=",".join(chosen) if chosen and set(chosen) != every else "all",
            locale=value["locale"], timezone=value["timezone"], at=value["at"],
        )  # fmt: skip
    except BriefingError as exc:
        return _preferences(web, sub, topics, status=422, error=str(exc))
    log.info("subscription %s: preferences changed by the reader", sub.id)
    return _preferences(web, sub, await _topics(web, sub.locale), saved=True)


@router.post("/preferences/{token}/leave")
async def leave(token: str, web: Web) -> Response:
    sub = await _reader(web, token)
    if sub is None:
        return _unknown(web)
    await actions.leave(web, sub)
    log.info("subscription %s unsubscribed by the reader", sub.id)
    return _left(web, sub)
