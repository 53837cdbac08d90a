"""The HTTP API under ``/api/v1``: subscriptions, test messages, sends, the delivery log,
the digest preview and the state (its editing in ``bot.web.editing``, the feeds' review in
``bot.web.review``). Every route is a thin front door over
``bot.operations`` (the CLI's operations), behind the bearer token (``bot.web.auth``);
errors are problem details (``bot.web.problems``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter

from bot.delivery import Status
from bot.operations import deliveries as log
from bot.operations import preview as previews
from bot.operations import sending
from bot.operations import subscriptions as ops
from bot.operations.deliveries import DeliveryView
from bot.operations.subscriptions import SubscriptionView
from bot.operations.values import parse_moment
from bot.state import State
from bot.store import states
from bot.store import subscriptions as subs
from bot.web import editing, review
from bot.web.auth import require_token
from bot.web.context import Web
from bot.web.models import (
    MAX_ID,
    CreatedSubscription,
    DeliveryPage,
    NewSubscription,
    Pause,
    Queued,
    SendRequest,
    StateView,
    SubscriptionChange,
    SubscriptionDetail,
    SubscriptionPage,
    TestResult,
)
from bot.web.problems import PROBLEM_RESPONSES, ProblemError

PREFIX = "/api/v1"
router = APIRouter(
    prefix=PREFIX,
    dependencies=[Depends(require_token)],
    responses=PROBLEM_RESPONSES,
    generate_unique_id_function=lambda route: route.name,  # operationId: the function's name
)
documents = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])
SubscriptionId = Annotated[int, Path(ge=1, le=MAX_ID, description="The subscription's id.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="How many to return.")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="How many to skip.")]


def _topics(value: list[str] | Literal["all"] | None) -> str | None:
    if value is None or value == "all":
        return value
    return ",".join(value)


def _next(request: Request, *, offset: int, limit: int, full: bool) -> str | None:
    if not full:
        return None
    query = {**request.query_params, "offset": str(offset + limit), "limit": str(limit)}
    return f"{request.url.path}?{urlencode(query)}"


# ── Subscriptions ────────────────────────────────────────────────────────────────────────


@router.get("/subscriptions", tags=["subscriptions"])
async def list_subscriptions(
    web: Web,
    request: Request,
    status: Annotated[list[Literal["active", "paused", "removed"]] | None, Query()] = None,
    kind: Annotated[str | None, Query(max_length=200)] = None,
    topic: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> SubscriptionPage:
    """Subscriptions by id (default: active and paused), filtered, a page at a time."""
    found = await ops.listing(
        web.db,
        statuses=tuple(status or (subs.ACTIVE, subs.PAUSED)),
        kind=kind,
        topic=topic,
        limit=limit,
        offset=offset,
    )
    return SubscriptionPage(
        items=[ops.describe(s) for s in found],
        limit=limit,
        offset=offset,
        next=_next(request, offset=offset, limit=limit, full=len(found) == limit),
    )


def _links(source: str, operations: list[str], parameter: str) -> dict[str, Any]:
    """OpenAPI links: where the id an answer holds (``source``) can be used next."""
    return {
        "links": {
            name: {"operationId": name, "parameters": {parameter: f"$response.body#{source}"}}
            for name in operations
        }
    }


SUBSCRIPTION_OPERATIONS = [
    "read_subscription", "update_subscription", "pause_subscription", "resume_subscription",
    "remove_subscription", "test_subscription",
]  # fmt: skip


@router.post(
    "/subscriptions",
    status_code=201,
    tags=["subscriptions"],
    responses={201: _links("/id", SUBSCRIPTION_OPERATIONS, "subscription_id")},
)
async def create_subscription(web: Web, new: NewSubscription) -> CreatedSubscription:
    """Make a subscription, checked as the CLI checks it (target through its output, SSRF
    rule included; schedule, timezone, topics, locale)."""
    wanted = ops.Wanted(
        kind=new.kind, address=new.address, secrets=tuple(new.secret or ()),
        topics=_topics(new.topics), locale=new.locale, timezone=new.timezone, at=new.at,
        cron=new.cron, name=new.name, skip_empty=new.skip_empty,
    )  # fmt: skip
    made = await ops.create(web.db, web.settings, wanted, clock=web.clock)
    web.wake()
    view = ops.describe(made.subscription)
    return CreatedSubscription(**view.model_dump(), secret=made.new_secret)


@router.get("/subscriptions/{subscription_id}", tags=["subscriptions"])
async def read_subscription(web: Web, subscription_id: SubscriptionId) -> SubscriptionDetail:
    """One subscription (a removed one too) and its latest deliveries."""
    sub = await ops.find(web.db, subscription_id, removed=True)
    recent = await log.listing(web.db, subscription_id=subscription_id, limit=10)
    return SubscriptionDetail(**ops.describe(sub).model_dump(), deliveries=recent)


@router.patch("/subscriptions/{subscription_id}", tags=["subscriptions"])
async def update_subscription(
    web: Web, subscription_id: SubscriptionId, change: SubscriptionChange
) -> SubscriptionView:
    """Change topics, language, timezone, schedule, name or skip_empty."""
    wanted = ops.Change(
        topics=_topics(change.topics), locale=change.locale, timezone=change.timezone,
        at=change.at, cron=change.cron, name=change.name, skip_empty=change.skip_empty,
    )  # fmt: skip
    sub = await ops.update(web.db, web.settings, subscription_id, wanted, clock=web.clock)
    return ops.describe(sub)


async def _set_status(
    web: Web, subscription_id: int, status: str, reason: str | None
) -> SubscriptionView:
    sub = await ops.change_status(web.db, subscription_id, status, reason=reason, clock=web.clock)
    return ops.describe(sub)


@router.post("/subscriptions/{subscription_id}/pause", tags=["subscriptions"])
async def pause_subscription(
    web: Web, subscription_id: SubscriptionId, pause: Pause | None = None
) -> SubscriptionView:
    """Stop sending to it until it is resumed (its queued deliveries are skipped)."""
    reason = pause.reason if pause and pause.reason else ops.PAUSED_BY_OPERATOR
    return await _set_status(web, subscription_id, subs.PAUSED, reason)


@router.post("/subscriptions/{subscription_id}/resume", tags=["subscriptions"])
async def resume_subscription(web: Web, subscription_id: SubscriptionId) -> SubscriptionView:
    """Resume it from its next period (missed ones are not sent)."""
    return await _set_status(web, subscription_id, subs.ACTIVE, None)


@router.delete("/subscriptions/{subscription_id}", tags=["subscriptions"])
async def remove_subscription(web: Web, subscription_id: SubscriptionId) -> SubscriptionView:
    """Remove it (still listed with status=removed; its delivery log is kept)."""
    return await _set_status(web, subscription_id, subs.REMOVED, ops.REMOVED_BY_OPERATOR)


@router.post("/subscriptions/{subscription_id}/test", tags=["subscriptions"])
async def test_subscription(web: Web, subscription_id: SubscriptionId) -> TestResult:
    """Send its digest once now, outside the outbox: the receiver's status and answer."""
    sub = await ops.find(web.db, subscription_id)
    reader = await previews.for_subscription(web.db, subscription_id, previews.Reader())
    digest = await previews.digest_for(web.db, web.settings, reader, now=web.clock())
    outcome = await sending.send_once(
        web.settings, web.renderer, sub.address, kind=sub.kind, secrets=sub.secrets,
        digest=digest, dry_run=False, clock=web.clock,
    )  # fmt: skip
    return TestResult.model_validate(outcome, from_attributes=False)


# ── Sends and deliveries ─────────────────────────────────────────────────────────────────


@router.post(
    "/sends",
    status_code=202,
    tags=["sends"],
    responses={202: _links("/deliveries/0", ["read_delivery"], "delivery")},
)
async def send(web: Web, request: SendRequest) -> Queued:
    """Queue a digest now for some subscriptions or all active ones, as `briefing send`
    does; the running bot's worker sends them. Answers at once: poll the deliveries."""
    ids = request.subscriptions or []
    if bool(ids) == request.all:
        raise ProblemError(422, "give either subscriptions (a list of ids) or all: true")
    await sending.plan_send(web.db, ids, force=request.force)
    period, rows = await sending.queue_send(web.db, ids, clock=web.clock, force=request.force)
    web.wake()
    poll = f"{PREFIX}/deliveries?{urlencode({'period': period.isoformat(), 'limit': 1000})}"
    return Queued(period=period.isoformat(), deliveries=rows, poll=poll)


def _moment(value: str | None, name: str) -> datetime | None:
    return parse_moment(value, option=name, timezone="UTC") if value is not None else None


@router.get("/deliveries", tags=["deliveries"])
async def list_deliveries(
    web: Web,
    request: Request,
    subscription: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Status | None = None,
    since: Annotated[
        str | None, Query(max_length=64, description="Periods from (ISO 8601; UTC if naive).")
    ] = None,
    until: Annotated[str | None, Query(max_length=64, description="Periods before.")] = None,
    period: Annotated[str | None, Query(max_length=64, description="This period only.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DeliveryPage:
    """The delivery log and the queue, newest period first, each with its attempts and the
    receiver's last answer."""
    found = await log.listing(
        web.db,
        subscription_id=subscription,
        status=status,
        since=_moment(since, "since"),
        until=_moment(until, "until"),
        period=_moment(period, "period"),
        limit=limit,
        offset=offset,
    )
    return DeliveryPage(
        items=found,
        limit=limit,
        offset=offset,
        next=_next(request, offset=offset, limit=limit, full=len(found) == limit),
    )


@router.get("/deliveries/{delivery}", tags=["deliveries"])
async def read_delivery(web: Web, delivery: Annotated[int, Path(ge=1, le=MAX_ID)]) -> DeliveryView:
    found = await log.listing(web.db, ids=[delivery], limit=1)
    if not found:
        raise ProblemError(404, f"no delivery {delivery}")
    return found[0]


# ── Preview and state ────────────────────────────────────────────────────────────────────

PREVIEW_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The digest: a document, or the JSON payloads an output would post.",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": {}},
        },
    }
}


@router.get("/preview", tags=["digest"], response_class=Response, responses=PREVIEW_RESPONSES)
async def preview(
    web: Web,
    format: Annotated[str, Query(min_length=1, max_length=40)] = "text",
    topics: Annotated[str | None, Query(max_length=2000, description="a,b")] = None,
    locale: Annotated[str | None, Query(max_length=40)] = None,
    timezone: Annotated[str | None, Query(max_length=80)] = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
    now: Annotated[str | None, Query(max_length=64)] = None,
    subscription: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """The digest a reader (or ``subscription``) would get now, as `briefing preview`."""
    reader = previews.Reader(topics=topics, locale=locale, timezone=timezone, since=since, now=now)
    if subscription is not None:
        previews.check_format(format)
        reader = await previews.for_subscription(web.db, subscription, reader)
    shown = await previews.render_preview(web.db, web.settings, web.renderer, reader, format)
    return Response(shown.body, media_type=shown.media_type, headers={"Cache-Control": "no-store"})


STATE = TypeAdapter(State)


@router.get("/state", tags=["state"])
async def read_state(web: Web) -> StateView:
    """The current state revision, as stored."""
    state = await states.StateSource(web.db).latest()
    if state is None:
        raise ProblemError(404, "no state imported yet ('briefing state import')")
    return StateView(revision=state.revision, state=STATE.dump_python(state, mode="json"))


router.include_router(editing.router)  # the state's history and editors' changes
router.include_router(review.router)  # news feeds and their review


@documents.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    """The API's OpenAPI 3.1 document (behind the token, like the API)."""
    return JSONResponse(request.app.openapi())
