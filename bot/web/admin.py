"""The admin page (``/admin``): sign in with ``BRIEFING_API_TOKEN``; list, add, pause,
resume and remove subscriptions; send a test or the digest now; preview the digest as each
channel shows it; read the delivery log. Plain forms, no script; every form carries the
session's CSRF token. With no token configured the page is off and says so."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import escape
from starlette.datastructures import FormData

from bot.delivery import Status
from bot.digest import Digest
from bot.errors import BriefingError
from bot.store import subscriptions as subs
from bot.store.tables import MAX_ID
from bot.web import actions, session
from bot.web.context import Web, WebContext
from bot.web.html import framed, page
from bot.web.i18n import LOCALES, translator
from bot.web.session import Session

log = logging.getLogger("briefing.web")
router = APIRouter(prefix="/admin", include_in_schema=False)
STATUS_OF = {"pause": subs.PAUSED, "resume": subs.ACTIVE, "remove": subs.REMOVED}


class Visit:
    """One request to the admin page: its session, and how to answer it."""

    def __init__(self, request: Request, web: WebContext, token: str) -> None:
        self.request, self.web, self.token = request, web, token
        self.session = session.load(request, token)

    def render(self, name: str, *, status: int = 200, **values: object) -> Response:
        flash, self.session.flash = self.session.flash, []
        response = page(
            self.web, name, locale=self.session.lang, status=status,
            csrf=self.session.csrf, flash=flash, signed_in=self.session.signed_in, **values,
        )  # fmt: skip
        session.save(response, self.session, self.token, self.web.settings)
        return response

    def redirect(self, to: str = "/admin") -> Response:
        response = RedirectResponse(to, status_code=303)
        session.save(response, self.session, self.token, self.web.settings)
        return response

    def refused(self) -> Response:
        """A form without this session's CSRF token (forged, or from an old page)."""
        t = translator(self.session.lang)
        return self.render("admin/message.html.j2", status=403, title=t("expired_form"))

    async def form(self) -> FormData | None:
        """The posted form if it carries the session's CSRF token, else None."""
        form = await self.request.form()
        given = form.get("csrf")
        return (
            form
            if session.same(given if isinstance(given, str) else None, self.session.csrf)
            else None
        )


def _off(web: WebContext) -> Response:
    return page(
        web, "admin/off.html.j2", locale=web.settings.default_locale, status=404,
        csrf="", flash=[], signed_in=False,
    )  # fmt: skip


def _visit(request: Request, web: WebContext) -> Visit | Response:
    token = session.api_token(web.settings)
    return _off(web) if token is None else Visit(request, web, token)


def _signed_in(request: Request, web: WebContext) -> Visit | Response:
    visit = _visit(request, web)
    if isinstance(visit, Visit) and not visit.session.signed_in:
        return visit.redirect("/admin/login")
    return visit


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


@router.get("")
async def index(request: Request, web: Web) -> Response:
    visit = _signed_in(request, web)
    if not isinstance(visit, Visit):
        return visit
    return visit.render(
        "admin/index.html.j2",
        rows=await actions.overview(web),
        kinds=["email", *actions.webhook_kinds()],
        locales=LOCALES,
        default_timezone=web.settings.default_timezone,
    )


@router.get("/login")
async def login_page(request: Request, web: Web) -> Response:
    visit = _visit(request, web)
    if not isinstance(visit, Visit):
        return visit
    return visit.render("admin/login.html.j2", wrong=False)


@router.post("/login")
async def login(request: Request, web: Web) -> Response:
    visit = _visit(request, web)
    if not isinstance(visit, Visit):
        return visit
    form = await visit.form()
    if form is None:
        return visit.refused()
    if not session.same(_text(form, "token"), visit.token):
        log.warning("admin sign-in refused: wrong token (from %s)", _peer(request))
        return visit.render("admin/login.html.j2", status=401, wrong=True)
    visit.session = Session(signed_in=True, lang=visit.session.lang)  # a new CSRF token
    return visit.redirect()


@router.post("/logout")
async def logout(request: Request, web: Web) -> Response:
    visit = _visit(request, web)
    if not isinstance(visit, Visit):
        return visit
    if await visit.form() is None:
        return visit.refused()
    visit.session = Session(lang=visit.session.lang)
    return visit.redirect("/admin/login")


@router.get("/lang/{code}")
async def language(code: str, request: Request, web: Web) -> Response:
    visit = _visit(request, web)
    if not isinstance(visit, Visit):
        return visit
    if code in LOCALES:
        visit.session.lang = code
    return visit.redirect("/admin" if visit.session.signed_in else "/admin/login")


@router.post("/subscriptions")
async def add(request: Request, web: Web) -> Response:
    visit = _signed_in(request, web)
    if not isinstance(visit, Visit):
        return visit
    form = await visit.form()
    if form is None:
        return visit.refused()
    t = translator(visit.session.lang)
    kind = _text(form, "kind") or "email"
    try:
        sub, generated = await actions.subscribe(
            web, kind=kind, address=_text(form, "address") or "", secret=_text(form, "secret"),
            topics=_text(form, "topics"), locale=_text(form, "locale"),
            timezone=_text(form, "timezone"), at=_text(form, "at"), name=_text(form, "name"),
        )  # fmt: skip
    except BriefingError as exc:
        visit.session.say(False, f"{t('problem')}: {exc}")
        return visit.redirect()
    log.info("subscription %s added on the admin page", sub.id)
    visit.session.say(True, t("created", id=sub.id))
    if generated:
        visit.session.say(True, f"{t('secret_once')} {generated}")
    return visit.redirect()


@router.post("/subscriptions/{subscription_id}/{action}")
async def act(subscription_id: int, action: str, request: Request, web: Web) -> Response:
    visit = _signed_in(request, web)
    if not isinstance(visit, Visit):
        return visit
    form = await visit.form()
    if form is None:
        return visit.refused()
    t = translator(visit.session.lang)
    try:
        if not 1 <= subscription_id <= MAX_ID:
            raise BriefingError(f"no subscription {subscription_id}")
        if action in STATUS_OF:
            sub = await actions.change_status(web, subscription_id, STATUS_OF[action])
            visit.session.say(True, t("now_status", id=sub.id, status=t(sub.status)))
        elif action in ("test", "send"):
            send = actions.send_test if action == "test" else actions.send_now
            result = await send(web, subscription_id)
            words = "test_result" if action == "test" else "send_result"
            verdict = t("delivered") if result.ok else t("failed")
            visit.session.say(
                result.ok, t(words, id=subscription_id, result=f"{verdict} — {result.text}")
            )
        else:
            raise BriefingError(f"unknown action {action!r}")
    except BriefingError as exc:
        visit.session.say(False, f"{t('problem')}: {exc}")
    return visit.redirect()


@router.get("/deliveries")
async def deliveries(
    request: Request, web: Web, subscription: str | None = None, status: str | None = None
) -> Response:
    visit = _signed_in(request, web)
    if not isinstance(visit, Visit):
        return visit
    t = translator(visit.session.lang)
    chosen = None
    try:
        chosen = _subscription_id(subscription)
        rows = await actions.deliveries(web, subscription_id=chosen, status=status or None)
    except BriefingError as exc:
        visit.session.say(False, f"{t('problem')}: {exc}")
        rows = []
    return visit.render(
        "admin/deliveries.html.j2", rows=rows, statuses=list(Status),
        subscription=chosen, chosen_status=status or "",
    )  # fmt: skip


def _subscription_id(text: str | None) -> int | None:
    """A subscription id from a query: None when absent or not a number; past the
    database's integers, ``BriefingError`` as for any unknown subscription."""
    if not text or not text.isdigit():
        return None
    if not 1 <= int(text) <= MAX_ID:
        raise BriefingError(f"no subscription {text}")
    return int(text)


async def _preview_digest(web: WebContext, values: dict[str, str | None]) -> Digest:
    sub = None
    if (chosen := _subscription_id(values["subscription"])) is not None:
        sub = await subs.get(web.db, chosen)
    return await actions.digest_for(web, sub, locale=values["locale"], topics=values["topics"])


def _preview_values(request: Request) -> dict[str, str | None]:
    query = request.query_params
    values = {
        name: (query.get(name) or "").strip() or None
        for name in ("subscription", "locale", "topics", "channel")
    }
    if values["subscription"] and not values["subscription"].isdigit():
        values["subscription"] = None
    return values


@router.get("/preview")
async def preview(request: Request, web: Web) -> Response:
    visit = _signed_in(request, web)
    if not isinstance(visit, Visit):
        return visit
    t = translator(visit.session.lang)
    values = _preview_values(request)
    channel = values["channel"] or "email"
    text, problem = "", None
    try:
        text = actions.preview(web, await _preview_digest(web, values), channel)
    except BriefingError as exc:
        problem = f"{t('problem')}: {exc}"
    frame = "/admin/preview/email?" + request.url.query if channel == "email" else None
    return visit.render(
        "admin/preview.html.j2", channels=actions.preview_channels(), channel=channel,
        text=text, problem=problem, frame=frame, values=values,
        subscriptions=await subs.list_all(web.db), locales=LOCALES,
    )  # fmt: skip


@router.get("/preview/email")
async def preview_email(request: Request, web: Web) -> Response:
    """The HTML email alone, for the preview's sandboxed frame."""
    visit = _signed_in(request, web)
    if not isinstance(visit, Visit):
        return visit
    try:
        digest = await _preview_digest(web, _preview_values(request))
    except BriefingError as exc:
        return framed(f"<!DOCTYPE html><p>{escape(str(exc))}</p>")
    return framed(web.renderer.render(digest, "html"))


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"
