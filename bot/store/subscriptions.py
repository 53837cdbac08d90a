"""Subscriptions: who gets which digest, where, and when.

Webhook URLs and signing secrets are sealed with the database's keyring as they are
written and opened as they are read (``bot.crypto``): callers only ever see clear text.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.crypto import PREFIX, Keyring
from bot.delivery import OPERATOR, Status
from bot.errors import ConfigError
from bot.store.database import Database
from bot.store.tables import deliveries, subscriptions

ACTIVE, PAUSED, REMOVED = "active", "paused", "removed"
EMAIL = "email"  # the one kind whose address is not a secret


@dataclass(frozen=True)
class NewSubscription:
    """What a subscriber chose: channel, options and schedule."""

    name: str
    kind: str
    address: str
    secrets: tuple[str, ...]
    topics: tuple[str, ...] | None
    locale: str
    timezone: str
    cron: str
    skip_empty: bool
    next_fire_at: datetime | None


@dataclass(frozen=True)
class Subscription(NewSubscription):
    """A stored subscription, with its state."""

    id: int
    status: str
    paused_reason: str | None
    unsubscribe_token: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping, keyring: Keyring) -> Subscription:
        """The subscription in ``row``, its URL and secrets opened; ``ConfigError`` if
        they cannot be."""
        values = dict(row)
        values["address"], values["secrets"] = _opened(
            keyring, row["id"], row["kind"], row["address"], row["secrets"]
        )
        values["topics"] = tuple(values["topics"]) if values["topics"] else None
        return cls(**values)


def _sealed(keyring: Keyring, kind: str, address: str, secrets: Iterable[str]) -> dict[str, Any]:
    """The stored form of a target: the URL (not an email address) and secrets sealed."""
    return {
        "address": address if kind == EMAIL else keyring.seal(address),
        "secrets": [keyring.seal(secret) for secret in secrets],
    }


def _opened(
    keyring: Keyring, subscription_id: int, kind: str, address: str, secrets: list[str] | None
) -> tuple[str, tuple[str, ...]]:
    """The clear URL and secrets of a stored target; ``ConfigError`` naming the
    subscription and ``BRIEFING_SECRET_KEY`` if a key is missing."""
    if kind != EMAIL:
        address = keyring.open(address, what=f"the webhook URL of subscription {subscription_id}")
    what = f"a signing secret of subscription {subscription_id}"
    return address, tuple(keyring.open(secret, what=what) for secret in secrets or ())


@dataclass(frozen=True)
class Recipient:
    """What a worker needs of a subscription to send to it."""

    id: int
    kind: str
    address: str
    secrets: tuple[str, ...]
    topics: tuple[str, ...] | None
    locale: str
    timezone: str
    skip_empty: bool
    status: str
    paused_reason: str | None
    unsubscribe_token: str
    created_at: datetime


_RECIPIENT = [subscriptions.c[name] for name in Recipient.__dataclass_fields__]


async def recipients(db: Database, ids: Iterable[int]) -> list[Recipient]:
    """The subscriptions ``ids`` (whatever their status), as workers need them."""
    wanted = list(ids)
    if not wanted:
        return []
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(*_RECIPIENT).where(subscriptions.c.id.in_(wanted)))
        return [
            Recipient(
                r.id, r.kind, *_opened(db.keyring, r.id, r.kind, r.address, r.secrets),
                tuple(r.topics) if r.topics else None, r.locale, r.timezone, r.skip_empty,
                r.status, r.paused_reason, r.unsubscribe_token, r.created_at,
            )
            for r in rows
        ]  # fmt: skip


async def add(db: Database, new: NewSubscription, *, now: datetime) -> Subscription:
    values: dict[str, Any] = {
        **new.__dict__,
        **_sealed(db.keyring, new.kind, new.address, new.secrets),
        "topics": list(new.topics) if new.topics else None,
        "status": ACTIVE,
        "unsubscribe_token": secrets.token_urlsafe(24),
        "created_at": now,
        "updated_at": now,
    }
    async with db.engine.begin() as conn:
        result = await conn.execute(subscriptions.insert().values(**values))
        new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    return await get(db, int(new_id or 0))


async def get(db: Database, subscription_id: int) -> Subscription:
    """The subscription ``subscription_id``; ``ConfigError`` if there is none."""
    async with db.engine.connect() as conn:
        row = (
            (await conn.execute(select(subscriptions).where(subscriptions.c.id == subscription_id)))
            .mappings()
            .first()
        )
    if row is None or row["status"] == REMOVED:
        raise ConfigError(f"no subscription {subscription_id}")
    return Subscription.from_row(row, db.keyring)


async def list_all(
    db: Database, *, statuses: Sequence[str] = (ACTIVE, PAUSED)
) -> list[Subscription]:
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(subscriptions)
                .where(subscriptions.c.status.in_(statuses))
                .order_by(subscriptions.c.id)
            )
        ).mappings()
        return [Subscription.from_row(row, db.keyring) for row in rows]


async def kinds(db: Database, *, status: str = ACTIVE) -> set[str]:
    """The output kinds the subscriptions in ``status`` use."""
    async with db.engine.connect() as conn:
        query = select(subscriptions.c.kind).where(subscriptions.c.status == status).distinct()
        return set((await conn.execute(query)).scalars())


async def count(db: Database, *, status: str = ACTIVE) -> int:
    async with db.engine.connect() as conn:
        query = select(func.count()).select_from(subscriptions)
        return int((await conn.execute(query.where(subscriptions.c.status == status))).scalar_one())


async def update_fields(
    db: Database, subscription_id: int, *, now: datetime, **values: Any
) -> None:
    """Change columns of a subscription; a new address or new secrets are sealed."""
    if "address" in values or "secrets" in values:
        current = await get(db, subscription_id)
        values.update(
            _sealed(
                db.keyring,
                values.get("kind", current.kind),
                values.get("address", current.address),
                values.get("secrets", current.secrets),
            )
        )
    async with db.engine.begin() as conn:
        await conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(**values, updated_at=now)
        )


async def advance_in(
    conn: AsyncConnection, next_fires: Sequence[tuple[int, datetime | None]], *, now: datetime
) -> None:
    """Set next firing times in the caller's transaction (one statement for all)."""
    if not next_fires:
        return
    await conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == bindparam("sid"))
        .values(next_fire_at=bindparam("next"), updated_at=now),
        [{"sid": sid, "next": when} for sid, when in next_fires],
    )


async def set_status(
    db: Database,
    subscription_id: int,
    status: str,
    *,
    now: datetime,
    reason: str | None = None,
    next_fire_at: datetime | None = None,
) -> Subscription:
    """Pause, resume or remove; ``ConfigError`` if the subscription does not exist.

    Pausing or removing skips every row still queued for the subscription, whatever its
    trigger, in the same transaction; resuming does not bring them back.
    """
    await get(db, subscription_id)
    values: dict[str, Any] = {"status": status, "paused_reason": reason, "updated_at": now}
    if status == ACTIVE:
        values["next_fire_at"] = next_fire_at
    async with db.engine.begin() as conn:
        await conn.execute(
            update(subscriptions).where(subscriptions.c.id == subscription_id).values(**values)
        )
        if status != ACTIVE:
            await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.subscription_id == subscription_id,
                    deliveries.c.status == Status.PENDING,
                )
                .values(
                    status=Status.SKIPPED,
                    last_status=None,
                    last_answer=f"subscription {status}: {reason or 'no reason given'}",
                    next_attempt_at=None,
                    updated_at=now,
                )
            )
    if status == REMOVED:
        return Subscription.from_row(await _row(db, subscription_id), db.keyring)
    return await get(db, subscription_id)


async def pause_failing(
    db: Database, subscription_ids: Iterable[int], *, in_a_row: int, now: datetime
) -> dict[int, str]:
    """Pause each active subscription among ``subscription_ids`` whose last ``in_a_row``
    finished deliveries all died for a reason of the reader's (operator failures do not
    count); return the paused ones with the reason."""
    reason = f"the last {in_a_row} deliveries failed for good; resume it once the target works"
    counted = and_(
        deliveries.c.status.in_([Status.DELIVERED, Status.DEAD]),
        or_(deliveries.c.last_status.is_(None), deliveries.c.last_status != OPERATOR),
    )
    paused: dict[int, str] = {}
    for subscription_id in sorted(set(subscription_ids)):
        query = (
            select(deliveries.c.status)
            .where(deliveries.c.subscription_id == subscription_id, counted)
            .order_by(deliveries.c.period.desc())
            .limit(in_a_row)
        )
        async with db.engine.connect() as conn:
            recent = list((await conn.execute(query)).scalars())
        if len(recent) == in_a_row and set(recent) == {Status.DEAD}:
            sub = await recipients(db, [subscription_id])
            if sub and sub[0].status == ACTIVE:
                await set_status(db, subscription_id, PAUSED, now=now, reason=reason)
                paused[subscription_id] = reason
    return paused


async def by_token(db: Database, token: str) -> Subscription | None:
    """The subscription (removed ones included) whose unsubscribe token is ``token``."""
    async with db.engine.connect() as conn:
        query = select(subscriptions).where(subscriptions.c.unsubscribe_token == token)
        row = (await conn.execute(query)).mappings().first()
    return Subscription.from_row(row, db.keyring) if row is not None else None


async def _row(db: Database, subscription_id: int) -> RowMapping:
    async with db.engine.connect() as conn:
        query = select(subscriptions).where(subscriptions.c.id == subscription_id)
        return (await conn.execute(query)).mappings().one()


async def due(db: Database, *, now: datetime, limit: int = 1000) -> list[Subscription]:
    """Active subscriptions whose next firing time has come."""
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(subscriptions)
                .where(subscriptions.c.status == ACTIVE, subscriptions.c.next_fire_at <= now)
                .order_by(subscriptions.c.next_fire_at)
                .limit(limit)
            )
        ).mappings()
        return [Subscription.from_row(row, db.keyring) for row in rows]


async def upcoming(db: Database, *, limit: int) -> list[Subscription]:
    """The active subscriptions that fire next."""
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(subscriptions)
                .where(subscriptions.c.status == ACTIVE, subscriptions.c.next_fire_at.is_not(None))
                .order_by(subscriptions.c.next_fire_at)
                .limit(limit)
            )
        ).mappings()
        return [Subscription.from_row(row, db.keyring) for row in rows]


async def reseal(db: Database, *, batch: int = 500) -> int:
    """Seal every subscription's URL and secrets under the keyring's first key (clear ones
    included, removed subscriptions too); return how many rows changed. Rows already
    sealed under the first key are left as they are. ``ConfigError`` if there is no key or
    a value opens with none of the keys."""
    keyring = db.keyring
    changed, after = 0, 0
    while True:
        async with db.engine.begin() as conn:
            query = (
                select(
                    subscriptions.c.id,
                    subscriptions.c.kind,
                    subscriptions.c.address,
                    subscriptions.c.secrets,
                )
                .where(subscriptions.c.id > after)
                .order_by(subscriptions.c.id)
                .limit(batch)
            )
            rows = (await conn.execute(query)).all()
            if not rows:
                return changed
            updates = []
            for row in rows:
                stored = list(row.secrets or ())
                what = f"a signing secret of subscription {row.id}"
                secrets = [keyring.reseal(secret, what=what) for secret in stored]
                address = row.address
                if row.kind != EMAIL:
                    what = f"the webhook URL of subscription {row.id}"
                    address = keyring.reseal(address, what=what)
                if (address, secrets) != (row.address, stored):
                    updates.append({"sid": row.id, "new_address": address, "new_secrets": secrets})
            if updates:
                await conn.execute(
                    update(subscriptions)
                    .where(subscriptions.c.id == bindparam("sid"))
                    .values(address=bindparam("new_address"), secrets=bindparam("new_secrets")),
                    updates,
                )
            changed += len(updates)
            after = rows[-1].id


async def in_the_clear(db: Database) -> int:
    """How many webhook subscriptions (removed ones included) hold their URL in the clear."""
    async with db.engine.connect() as conn:
        query = (
            select(func.count())
            .select_from(subscriptions)
            .where(subscriptions.c.kind != EMAIL, subscriptions.c.address.not_like(f"{PREFIX}%"))
        )
        return int((await conn.execute(query)).scalar_one())


async def check_keys(db: Database) -> None:
    """Open the most recently sealed subscription, so that a missing or wrong
    ``BRIEFING_SECRET_KEY`` stops the bot at start; ``ConfigError`` naming it."""
    async with db.engine.connect() as conn:
        query = (
            select(subscriptions)
            .where(subscriptions.c.kind != EMAIL, subscriptions.c.address.like(f"{PREFIX}%"))
            .order_by(subscriptions.c.updated_at.desc(), subscriptions.c.id.desc())
            .limit(1)
        )
        row = (await conn.execute(query)).mappings().first()
    if row is not None:
        Subscription.from_row(row, db.keyring)
