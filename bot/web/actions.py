"""What the admin page and the public pages do, as calls to the bot's operations.

The one place the web pages reach the subscription, send and preview logic the CLI uses
(its validation helpers, the store, the worker): every function takes the ``WebContext``
and the values a form gave, and raises ``BriefingError`` (``ConfigError``, ``TargetError``)
with a message naming the field at fault.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

from bot.cli.common import load_current_state
from bot.cli.digest import PAYLOADS, preview_formats
from bot.cli.subscriptions import checked_options, delivery_view, describe
from bot.delivery import RetryPolicy, Status, deliver, render_message
from bot.digest import Digest, ReaderOptions, Window, compose
from bot.errors import ConfigError
from bot.outputs import Envelope, Target, make_context, output_class, output_classes
from bot.outputs.webhooks import new_secret
from bot.redact import default_name, scrub
from bot.schedule import next_fire, schedule_from
from bot.state import State
from bot.store import outbox, states
from bot.store import subscriptions as subs
from bot.web.context import WebContext

SEND_NOW_WAIT = 20.0
"""Seconds "send now" waits for its delivery's outcome before saying it is still queued."""
ONE_TRY = RetryPolicy(attempts=1)


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
        recent = await outbox.listing(web.db, subscription_id=sub.id, limit=1)
        found.append(Overview(describe(sub), delivery_view(recent[0]) if recent else None))
    return found


async def deliveries(
    web: WebContext, *, subscription_id: int | None, status: str | None, limit: int = 100
) -> list[dict[str, Any]]:
    if status is not None and status not in list(Status):
        raise ConfigError(f"unknown status {status!r} (known: {', '.join(Status)})")
    rows = await outbox.listing(web.db, subscription_id=subscription_id, status=status, limit=limit)
    return [delivery_view(row) for row in rows]


async def validated(web: WebContext, kind: str, address: str, secrets: tuple[str, ...]) -> Target:
    """The target checked by its output (SSRF rule, address syntax, secret), as the CLI does."""
    context = make_context(web.settings)
    output = output_class(kind)(context)
    try:
        return await output.validate(Target(kind=kind, address=address, secrets=secrets))
    finally:
        await output.aclose()
        await context.aclose()


def options(
    web: WebContext,
    *,
    topics: str | None,
    locale: str | None,
    timezone: str | None,
    at: str | None,
    cron: str | None = None,
) -> tuple[tuple[str, ...] | None, str, str, str]:
    """(topics or None for all, locale, timezone, crontab), checked as the CLI checks them."""
    zone = timezone or web.settings.default_timezone
    language = locale or web.settings.default_locale
    crontab = schedule_from(at=at, cron=cron)
    return checked_options(topics, language, zone, crontab), language, zone, crontab  # fmt: skip


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
    if kind not in output_classes():
        raise ConfigError(f"kind: unknown output {kind!r}")
    chosen, language, zone, crontab = options(
        web, topics=topics, locale=locale, timezone=timezone, at=at, cron=cron
    )
    secrets = (secret,) if secret else ()
    generated = None
    if kind == "generic" and not secrets:
        generated = new_secret()
        secrets = (generated,)
    target = await validated(web, kind, address, secrets)
    now = web.clock()
    new = subs.NewSubscription(
        name=name or default_name(kind, target.address), kind=kind, address=target.address,
        secrets=target.secrets, topics=chosen, locale=language, timezone=zone, cron=crontab,
        skip_empty=False, next_fire_at=next_fire(crontab, zone, after=now),
    )  # fmt: skip
    return await subs.add(web.db, new, now=now), generated


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
    chosen, language, zone, crontab = options(
        web, topics=topics or "all", locale=locale, timezone=timezone, at=at
    )
    now = web.clock()
    values: dict[str, Any] = {
        "topics": list(chosen) if chosen else None, "locale": language, "timezone": zone,
        "cron": crontab,
    }  # fmt: skip
    if sub.status == subs.ACTIVE:
        values["next_fire_at"] = next_fire(crontab, zone, after=now)
    await subs.update_fields(web.db, sub.id, now=now, **values)
    return await subs.get(web.db, sub.id)


async def change_status(web: WebContext, subscription_id: int, status: str) -> subs.Subscription:
    """Pause, resume (from its next period) or remove a subscription."""
    sub = await subs.get(web.db, subscription_id)
    now = web.clock()
    upcoming = next_fire(sub.cron, sub.timezone, after=now) if status == subs.ACTIVE else None
    reason = {subs.PAUSED: "paused by an operator", subs.REMOVED: "removed by an operator"}
    return await subs.set_status(
        web.db, sub.id, status, now=now, reason=reason.get(status), next_fire_at=upcoming
    )


async def leave(web: WebContext, sub: subs.Subscription) -> None:
    if sub.status != subs.REMOVED:
        await subs.set_status(
            web.db, sub.id, subs.REMOVED, now=web.clock(), reason="unsubscribed by the reader"
        )


async def current_state(web: WebContext) -> State:
    """The state the worker sends: the latest stored revision (the files if none)."""
    state = await states.StateSource(web.db).latest()
    if state is None:
        return load_current_state()
    return state


async def digest_for(
    web: WebContext,
    sub: subs.Subscription | None,
    *,
    locale: str | None = None,
    topics: str | None = None,
) -> Digest:
    """What ``sub`` (or a reader with these options) would get now: its window and options."""
    now = web.clock()
    since = None
    if sub is not None:
        since = (await outbox.last_windows(web.db, [sub.id])).get(sub.id)
        topics = topics or (",".join(sub.topics) if sub.topics else None)
        locale = locale or sub.locale
    chosen, language, zone, _ = options(
        web, topics=topics, locale=locale, timezone=sub.timezone if sub else None, at=None
    )
    reader = ReaderOptions(topics=chosen, locale=language, timezone=zone)
    return compose(await current_state(web), reader, Window.ending(now, since=since))


def preview_channels() -> list[str]:
    """What the admin page previews: the email, the documents, every payload output."""
    return ["email", *(f for f in preview_formats() if f not in ("html", "email"))]


def preview(web: WebContext, digest: Digest, channel: str) -> str:
    """``digest`` as ``channel`` shows it: a document, or the JSON payloads an output posts."""
    output_cls = output_classes().get(channel)
    if output_cls is not None and issubclass(output_cls, PAYLOADS):
        output = output_cls(make_context(web.settings))
        payloads = output.payloads(render_message(web.renderer, digest, output_cls))
        return json.dumps(payloads, ensure_ascii=False, indent=2)
    if channel == "email":
        channel = "text"
    if channel not in preview_channels():
        raise ConfigError(f"channel: unknown channel {channel!r}")
    return web.renderer.render(digest, channel)


async def send_test(web: WebContext, subscription_id: int) -> SendResult:
    """Send the current digest to the subscription once, now, outside the outbox (its next
    digest's window does not move); the receiver's status and answer, tokens masked."""
    sub = await subs.get(web.db, subscription_id)
    digest = await digest_for(web, sub)
    context = make_context(web.settings)
    output_cls = output_class(sub.kind)
    output = output_cls(context)
    target = Target(sub.kind, sub.address, sub.secrets)
    envelope = Envelope(
        f"test_{uuid.uuid4().hex}",
        unsubscribe_token=sub.unsubscribe_token,
        subscribed_at=sub.created_at,
    )
    try:
        message = render_message(web.renderer, digest, output_cls)
        outcome = await deliver(
            output, target, message, envelope=envelope, policy=ONE_TRY, clock=web.clock
        )
    finally:
        await output.aclose()
        await context.aclose()
    answer = scrub(outcome.answer or "", sub.address)
    return SendResult(outcome.ok, f"{outcome.code or '—'} {answer}".strip())


async def send_now(web: WebContext, subscription_id: int) -> SendResult:
    """Queue a manual delivery through the outbox, as ``briefing send --subscription``, and
    send it from this process; the outcome, or that it is still queued."""
    from bot.worker import Worker, send_and_wait

    sub = await subs.get(web.db, subscription_id)
    now = web.clock()
    row_ids = await outbox.queue_manual(web.db, now=now, subscription_ids=[sub.id])
    context = make_context(web.settings)
    worker = Worker(
        web.db, context, renderer=web.renderer, clock=web.clock, concurrency=4,
        send_timeout=web.settings.send_timeout.total_seconds(),
    )  # fmt: skip
    try:
        async with asyncio.timeout(SEND_NOW_WAIT):
            await send_and_wait(worker, row_ids, period=now, horizon=5.0)
    except TimeoutError:
        web.wake()
    finally:
        await worker.close()
        await context.aclose()
    rows = await outbox.listing(web.db, ids=row_ids, limit=len(row_ids))
    if not rows:
        return SendResult(False, "nothing queued")
    row = delivery_view(rows[0])
    text = " ".join(str(x) for x in (row["status"], row["last_status"], row["answer"]) if x)
    return SendResult(rows[0].status in (Status.DELIVERED, Status.SKIPPED), text)
