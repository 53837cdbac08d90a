"""Subscriptions: make one (checked through its output, SSRF rule included), change it,
pause, resume or remove it, find and list them, and show them with secrets masked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from bot.digest.compose import ReaderOptions, check_options
from bot.errors import ConfigError
from bot.operations.common import NotFound, current_state
from bot.operations.values import check_name, parse_topics
from bot.outputs import Target, infer_kind, make_context, output_class
from bot.outputs.webhooks import new_secret
from bot.redact import default_name, mask_secret, mask_target
from bot.schedule import next_fire, schedule_from, trigger_for
from bot.settings import Settings
from bot.store import subscriptions as subs
from bot.store.database import Database

Clock = Callable[[], datetime]


class SubscriptionView(BaseModel):
    """A subscription as the CLI's ``--json`` and the API show it: secrets and
    token-bearing URLs masked; times as ISO 8601 (``next`` in the subscriber's zone),
    ``null`` for none (``topics: null`` is every topic)."""

    id: int
    name: str
    kind: str
    target: str = Field(description="The address, with tokens in URLs masked.")
    secrets: list[str] = Field(description="Signing secrets and tokens, masked.")
    topics: list[str] | None
    locale: str
    timezone: str
    cron: str
    skip_empty: bool
    status: str = Field(description="active, paused or removed.")
    reason: str | None = Field(description="Why it is paused or removed.")
    next: str | None = Field(description="Its next digest, in its zone (null: none).")
    next_text: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Wanted:
    """A subscription to make, as given (the CLI's options, the API's fields): None is the
    default. ``topics`` is comma-separated or ``all``."""

    kind: str | None
    address: str
    secrets: tuple[str, ...] = ()
    topics: str | None = None
    locale: str | None = None
    timezone: str | None = None
    at: str | None = None
    cron: str | None = None
    name: str | None = None
    skip_empty: bool = False


@dataclass(frozen=True)
class Change:
    """What to change in a subscription; None leaves a value as it is."""

    topics: str | None = None
    locale: str | None = None
    timezone: str | None = None
    at: str | None = None
    cron: str | None = None
    name: str | None = None
    skip_empty: bool | None = None


@dataclass(frozen=True)
class Created:
    """A new subscription, and the signing secret made for it (shown once), if any."""

    subscription: subs.Subscription
    new_secret: str | None


def local(moment: datetime | None, zone: str) -> datetime | None:
    return moment.astimezone(ZoneInfo(zone)) if moment else None


def when(moment: datetime | None) -> str | None:
    """A moment as people read it, in its own zone: ``2025-12-03 07:30 CET``."""
    return moment.strftime("%Y-%m-%d %H:%M %Z") if moment else None


def describe(sub: subs.Subscription) -> SubscriptionView:
    upcoming = local(sub.next_fire_at, sub.timezone) if sub.status == subs.ACTIVE else None
    return SubscriptionView(
        id=sub.id, name=sub.name, kind=sub.kind, target=mask_target(sub.address),
        secrets=[mask_secret(s) for s in sub.secrets],
        topics=list(sub.topics) if sub.topics else None,
        locale=sub.locale, timezone=sub.timezone, cron=sub.cron,
        skip_empty=sub.skip_empty, status=sub.status,
        reason=sub.paused_reason if sub.status != subs.ACTIVE else None,
        next=upcoming.isoformat() if upcoming else None,
        next_text=when(upcoming) or "never",
        created_at=sub.created_at.isoformat(), updated_at=sub.updated_at.isoformat(),
    )  # fmt: skip


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


async def find(db: Database, subscription_id: int, *, removed: bool = False) -> subs.Subscription:
    """The subscription ``subscription_id``; a removed one only if ``removed`` (else
    ``NotFound`` saying when and why it was removed)."""
    try:
        return await subs.get(db, subscription_id)
    except ConfigError as exc:
        gone = [
            s for s in await subs.list_all(db, statuses=(subs.REMOVED,)) if s.id == subscription_id
        ]
        if not gone:
            raise NotFound(str(exc)) from None
        if removed:
            return gone[0]
        raise NotFound(
            f"subscription {subscription_id} was removed on "
            f"{utc_text(gone[0].updated_at)} ({gone[0].paused_reason or 'no reason given'})"
        ) from None


async def listing(
    db: Database,
    *,
    statuses: Sequence[str] = (subs.ACTIVE, subs.PAUSED),
    kind: str | None = None,
    topic: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[subs.Subscription]:
    """Subscriptions in ``statuses``, of ``kind`` and receiving ``topic`` if given, by id."""
    found = [
        s
        for s in await subs.list_all(db, statuses=tuple(statuses))
        if (kind is None or s.kind == kind) and (topic is None or not s.topics or topic in s.topics)
    ]
    return found[offset : None if limit is None else offset + limit]


async def checked_options(
    settings: Settings, topics: str | None, locale: str, zone: str, crontab: str, *, now: datetime
) -> tuple[str, ...] | None:
    """Check topics, locale, timezone and schedule together against the current state
    files (read off the event loop); return the topics chosen (None for all)."""
    trigger_for(crontab, zone)
    if next_fire(crontab, zone, after=now) is None:
        raise ConfigError(f"--cron {crontab!r} never fires (no such date in any year)")
    chosen = parse_topics(topics) if topics != "all" else None
    options = ReaderOptions(topics=chosen, locale=locale, timezone=zone)
    check_options(await asyncio.to_thread(current_state, settings), options)
    return chosen


async def validated(
    settings: Settings, kind: str, address: str, secrets: tuple[str, ...]
) -> Target:
    """The target as its output accepts it (address syntax, the SSRF rule, secrets);
    ``TargetError`` if it does not."""
    context = make_context(settings)
    output = output_class(kind)(context)
    try:
        return await output.validate(Target(kind=kind, address=address, secrets=secrets))
    finally:
        await output.aclose()
        await context.aclose()


async def create(db: Database, settings: Settings, wanted: Wanted, *, clock: Clock) -> Created:
    """Make a subscription after checking everything about it; a generic webhook without a
    secret gets a new one (``Created.new_secret``, to be shown once)."""
    kind = wanted.kind or infer_kind(wanted.address)
    output_class(kind)  # an unknown kind stops here, naming the known ones
    zone = wanted.timezone or settings.default_timezone
    locale = wanted.locale or settings.default_locale
    name = check_name(wanted.name)
    crontab = schedule_from(at=wanted.at, cron=wanted.cron)
    now = clock()
    chosen = await checked_options(settings, wanted.topics, locale, zone, crontab, now=now)
    secrets, generated = wanted.secrets, None
    if kind == "generic" and not secrets:
        generated = new_secret()
        secrets = (generated,)
    target = await validated(settings, kind, wanted.address, secrets)
    new = subs.NewSubscription(
        name=name or default_name(kind, target.address),
        kind=kind,
        address=target.address,
        secrets=target.secrets,
        topics=chosen,
        locale=locale,
        timezone=zone,
        cron=crontab,
        skip_empty=wanted.skip_empty,
        next_fire_at=next_fire(crontab, zone, after=now),
    )
    return Created(await subs.add(db, new, now=now), generated)


async def update(
    db: Database, settings: Settings, subscription_id: int, change: Change, *, clock: Clock
) -> subs.Subscription:
    """Change a subscription's options; a new schedule applies from its next period."""
    name = check_name(change.name)
    sub = await find(db, subscription_id)
    zone = change.timezone or sub.timezone
    crontab = (
        schedule_from(at=change.at, cron=change.cron) if change.at or change.cron else sub.cron
    )
    wanted = change.topics or (",".join(sub.topics) if sub.topics else None)
    now = clock()
    chosen = await checked_options(
        settings, wanted, change.locale or sub.locale, zone, crontab, now=now
    )
    values: dict[str, Any] = {
        "topics": list(chosen) if chosen else None, "locale": change.locale or sub.locale,
        "timezone": zone, "cron": crontab, "name": name or sub.name,
        "skip_empty": sub.skip_empty if change.skip_empty is None else change.skip_empty,
    }  # fmt: skip
    if (crontab, zone) != (sub.cron, sub.timezone) and sub.status == subs.ACTIVE:
        values["next_fire_at"] = next_fire(crontab, zone, after=now)
    await subs.update_fields(db, subscription_id, now=now, **values)
    return await subs.get(db, subscription_id)


PAUSED_BY_OPERATOR = "paused by an operator"
REMOVED_BY_OPERATOR = "removed by an operator"


async def change_status(
    db: Database, subscription_id: int, status: str, *, reason: str | None, clock: Clock
) -> subs.Subscription:
    """Pause (``reason``), resume (from its next period) or remove a subscription."""
    check_name(reason, option="--reason")
    now = clock()
    sub = await find(db, subscription_id)
    upcoming = next_fire(sub.cron, sub.timezone, after=now) if status == subs.ACTIVE else None
    return await subs.set_status(
        db, subscription_id, status, now=now, reason=reason, next_fire_at=upcoming
    )
