"""What the admin page and the public pages do, as calls to the bot's operations.

The one place the web pages reach the subscription, send and preview logic the CLI uses
(its validation helpers, the store, the worker): every function takes the ``WebContext``
and the values a form gave, and raises ``BriefingError`` (``ConfigError``, ``TargetError``)
with a message naming the field at fault.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot.delivery import Status
from bot.digest import Digest
from bot.errors import ConfigError
from bot.operations import deliveries as log_ops
from bot.operations import preview as previews
from bot.operations import sending
from bot.operations import subscriptions as ops
from bot.operations.common import current_state as state_now
from bot.outputs import Target, output_classes
from bot.schedule import schedule_from
from bot.state import State
from bot.store import states
from bot.store import subscriptions as subs
from bot.web.context import WebContext

SEND_NOW_WAIT = 20.0
"""Seconds "send now" waits for its delivery's outcome before saying it is still queued."""


@dataclass(frozen=True)
class Overview:
    """A subscription as the admin page lists it: ``describe``'s fields and its last delivery."""

    data: dict[str, Any]
    last: dict[str, Any] | None


@dataclass(frozen=True)
class SendResult:
    ok: bool
    text: str


def webhook_kinds() -> list[str]:
    """The output kinds a subscription can use, besides email."""
    return sorted(name for name in output_classes() if name != subs.EMAIL)


async def overview(web: WebContext) -> list[Overview]:
    found = []
    for sub in await subs.list_all(web.db):
        recent = await log_ops.listing(web.db, subscription_id=sub.id, limit=1)
        last = recent[0].model_dump(mode="json") if recent else None
        found.append(Overview(ops.describe(sub).model_dump(mode="json"), last))
    return found


async def deliveries(
    web: WebContext, *, subscription_id: int | None, status: str | None, limit: int = 100
) -> list[dict[str, Any]]:
    if status is not None and status not in list(Status):
        raise ConfigError(f"unknown status {status!r} (known: {', '.join(Status)})")
    rows = await log_ops.listing(
        web.db, subscription_id=subscription_id, status=Status(status) if status else None,
        limit=limit,
    )  # fmt: skip
    return [row.model_dump(mode="json") for row in rows]


async def validated(web: WebContext, kind: str, address: str, secrets: tuple[str, ...]) -> Target:
    """The target checked by its output (SSRF rule, address syntax, secret), as the CLI does."""
    return await ops.validated(web.settings, kind, address, secrets)


async def options(
    web: WebContext, *, topics: str | None, locale: str | None, timezone: str | None, at: str | None
) -> tuple[tuple[str, ...] | None, str, str, str]:
    """(topics or None for all, locale, timezone, crontab), checked as the CLI checks them."""
    zone = timezone or web.settings.default_timezone
    language = locale or web.settings.default_locale
    crontab = schedule_from(at=at, cron=None)
    chosen = await ops.checked_options(
        web.settings, topics, language, zone, crontab, now=web.clock()
    )
    return chosen, language, zone, crontab


async def subscribe(
    web: WebContext,
    *,
    kind: str,
    address: str,
    secret: str | None,
    topics: str | None,
    locale: str | None,
    timezone: str | None,
    at: str | None,
    name: str | None,
    cron: str | None = None,
) -> tuple[subs.Subscription, str | None]:
    """Add a subscription; return it and the signing secret generated for it (shown once)."""
    wanted = ops.Wanted(
        kind=kind, address=address, secrets=(secret,) if secret else (), topics=topics,
        locale=locale, timezone=timezone, at=at, cron=cron, name=name,
    )  # fmt: skip
    created = await ops.create(web.db, web.settings, wanted, clock=web.clock)
    return created.subscription, created.new_secret


async def update_options(
    web: WebContext,
    sub: subs.Subscription,
    *,
    topics: str | None,
    locale: str | None,
    timezone: str | None,
    at: str | None,
) -> subs.Subscription:
    """Change a subscription's topics, language, timezone and hour (as ``subscriptions update``)."""
    change = ops.Change(topics=topics or "all", locale=locale, timezone=timezone, at=at)
    return await ops.update(web.db, web.settings, sub.id, change, clock=web.clock)


async def change_status(web: WebContext, subscription_id: int, status: str) -> subs.Subscription:
    """Pause, resume (from its next period) or remove a subscription."""
    reason = {subs.PAUSED: ops.PAUSED_BY_OPERATOR, subs.REMOVED: ops.REMOVED_BY_OPERATOR}
    return await ops.change_status(
        web.db, subscription_id, status, reason=reason.get(status), clock=web.clock
    )


async def leave(web: WebContext, sub: subs.Subscription) -> None:
    if sub.status != subs.REMOVED:
        await ops.change_status(
            web.db, sub.id, subs.REMOVED, reason="unsubscribed by the reader", clock=web.clock
        )


async def current_state(web: WebContext) -> State:
    """The state digests are composed from: the stored one (the files before any import)."""
    stored = await states.StateSource(web.db).latest()
    return stored if stored is not None else await asyncio.to_thread(state_now, web.settings)


async def digest_for(
    web: WebContext,
    sub: subs.Subscription | None,
    *,
    locale: str | None = None,
    topics: str | None = None,
) -> Digest:
    """What ``sub`` (or a reader with these options) would get now: its window and options."""
    reader = previews.Reader(topics=topics, locale=locale)
    if sub is not None:
        reader = await previews.for_subscription(web.db, sub.id, reader)
    return await previews.digest_for(web.db, web.settings, reader, now=web.clock())


def preview_channels() -> list[str]:
    """What the admin page previews: the email, the documents, every payload output."""
    return ["email", *(f for f in previews.preview_formats() if f not in ("html", "email"))]


def preview(web: WebContext, digest: Digest, channel: str) -> str:
    """``digest`` as ``channel`` shows it: a document, or the JSON payloads an output posts."""
    if channel == "email":
        channel = "text"
    if channel not in preview_channels():
        raise ConfigError(f"channel: unknown channel {channel!r}")
    return previews.rendered(web.settings, web.renderer, digest, channel).body


async def send_test(web: WebContext, subscription_id: int) -> SendResult:
    """Send the current digest to the subscription once, now, outside the outbox (its next
    digest's window does not move); the receiver's status and answer, tokens masked."""
    sub = await ops.find(web.db, subscription_id)
    outcome = await sending.send_once(
        web.settings, web.renderer, sub.address, kind=sub.kind, secrets=sub.secrets,
        digest=await digest_for(web, sub), dry_run=False, clock=web.clock,
    )  # fmt: skip
    shown = " ".join(str(x) for x in (outcome.get("status"), outcome.get("answer")) if x)
    return SendResult(bool(outcome["ok"]), shown or "—")


async def send_now(web: WebContext, subscription_id: int) -> SendResult:
    """Queue a manual delivery through the outbox, as ``briefing send --subscription``, and
    send it from this process; the outcome, or that it is still queued."""
    from bot.outputs import make_context
    from bot.worker import Worker, send_and_wait

    await sending.plan_send(web.db, [subscription_id], force=False)
    period, row_ids = await sending.queue_send(
        web.db, [subscription_id], clock=web.clock, force=False
    )
    context = make_context(web.settings)
    worker = Worker(
        web.db, context, renderer=web.renderer, clock=web.clock, concurrency=4,
        send_timeout=web.settings.send_timeout.total_seconds(),
    )  # fmt: skip
    try:
        async with asyncio.timeout(SEND_NOW_WAIT):
            await send_and_wait(worker, row_ids, period=period, horizon=5.0)
    except TimeoutError:
        web.wake()
    finally:
        await worker.close()
        await context.aclose()
    rows = await log_ops.listing(web.db, ids=row_ids, limit=len(row_ids))
    if not rows:
        return SendResult(False, "nothing queued")
    row = rows[0]
    text = " ".join(str(x) for x in (row.status, row.last_status, row.answer) if x)
    return SendResult(row.status in (Status.DELIVERED, Status.SKIPPED), text)
