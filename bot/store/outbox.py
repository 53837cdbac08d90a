"""The outbox: one row per (subscription, period), from scheduling to the delivery log.

Rows are claimed under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several
workers, in one process or many, never send the same row at once; a row whose lease ran
out (a crashed worker) is claimed again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from bot.store.database import Database
from bot.store.tables import deliveries

PENDING, SENDING, DELIVERED, DEAD, SKIPPED = "pending", "sending", "delivered", "dead", "skipped"
TERMINAL = (DELIVERED, DEAD, SKIPPED)
STATUSES = (PENDING, SENDING, DELIVERED, DEAD, SKIPPED)


def delivery_key(subscription_id: int, period: datetime, *, trigger: str = "scheduled") -> str:
    """The stable id of a delivery (``webhook-id``, ``Message-ID``) for its whole life."""
    stamp = period.strftime("%Y%m%dT%H%M%S")
    if trigger == "manual":
        stamp += period.strftime(".%f")
    return f"dlv_{subscription_id}_{stamp}Z{'_manual' if trigger == 'manual' else ''}"


@dataclass(frozen=True)
class Delivery:
    """One outbox row."""

    id: int
    delivery_key: str
    subscription_id: int
    period: datetime
    trigger: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    sent_by: str | None
    window_start: datetime | None
    window_end: datetime | None
    state_revision: str | None
    first_part: int
    parts: int
    last_status: str | None
    last_answer: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_row(cls, row: RowMapping) -> Delivery:
        return cls(**dict(row))


def new_row(
    subscription_id: int,
    period: datetime,
    *,
    now: datetime,
    trigger: str = "scheduled",
    status: str = PENDING,
    note: str | None = None,
) -> dict[str, Any]:
    """Values for a new outbox row."""
    return {
        "delivery_key": delivery_key(subscription_id, period, trigger=trigger),
        "subscription_id": subscription_id,
        "period": period,
        "trigger": trigger,
        "status": status,
        "attempts": 0,
        "next_attempt_at": now if status == PENDING else None,
        "first_part": 0,
        "parts": 0,
        "last_answer": note,
        "created_at": now,
        "updated_at": now,
    }


async def insert(db: Database, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows, ignoring any whose (subscription, period) already exists; return the ids
    of the new ones."""
    async with db.engine.begin() as conn:
        return await insert_in(conn, rows)


async def insert_in(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """``insert`` within the caller's transaction."""
    if not rows:
        return []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(deliveries).on_conflict_do_nothing().returning(deliveries.c.id)
    result = await conn.execute(statement, list(rows))
    return list(result.scalars())


async def claim(
    db: Database,
    *,
    owner: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    period: datetime | None = None,
) -> list[Delivery]:
    """Take up to ``limit`` due rows for ``owner`` until ``now + lease``."""
    due = or_(
        and_(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= now),
        and_(deliveries.c.status == SENDING, deliveries.c.lease_until < now),
    )
    query = select(deliveries.c.id).where(due).order_by(deliveries.c.next_attempt_at).limit(limit)
    if period is not None:
        query = query.where(deliveries.c.period == period)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    async with db.engine.begin() as conn:
        ids = list((await conn.execute(query)).scalars())
        if not ids:
            return []
        rows = (
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids), due)
                .values(
                    status=SENDING,
                    lease_owner=owner,
                    lease_until=now + lease,
                    attempts=deliveries.c.attempts + 1,
                    updated_at=now,
                )
                .returning(*deliveries.c)
            )
        ).mappings()
        return [Delivery.from_row(row) for row in rows]


def _held(ids: Sequence[int], owner: str) -> ColumnElement[bool]:
    """Rows among ``ids`` that ``owner`` is sending."""
    return and_(
        deliveries.c.id.in_(list(ids)),
        deliveries.c.lease_owner == owner,
        deliveries.c.status == SENDING,
    )


async def renew(db: Database, ids: Sequence[int], *, owner: str, until: datetime) -> None:
    """Extend the lease on rows this worker is still sending."""
    if not ids:
        return
    async with db.engine.begin() as conn:
        await conn.execute(update(deliveries).where(_held(ids, owner)).values(lease_until=until))


async def record(db: Database, results: Sequence[dict[str, Any]], *, owner: str) -> None:
    """Write outcomes in one statement; each dict has ``row_id`` plus the columns to set.

    Only rows still leased by ``owner`` are touched, so a worker whose lease ran out cannot
    overwrite the work of the one that took the row over.
    """
    if not results:
        return
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault(tuple(sorted(set(result) - {"row_id"})), []).append(result)
    async with db.engine.begin() as conn:
        for columns, group in groups.items():  # one statement per shape of outcome
            statement = (
                update(deliveries)
                .where(deliveries.c.id == bindparam("row_id"), deliveries.c.lease_owner == owner)
                .values({c: bindparam(f"v_{c}") for c in columns})
            )
            params = [{"row_id": r["row_id"], **{f"v_{c}": r[c] for c in columns}} for r in group]
            await conn.execute(statement, params)


async def release(db: Database, ids: Sequence[int], *, owner: str, now: datetime) -> None:
    """Give rows back to the queue (at shutdown), as if they had not been tried."""
    if not ids:
        return
    async with db.engine.begin() as conn:
        await conn.execute(
            update(deliveries)
            .where(_held(ids, owner))
            .values(
                status=PENDING,
                lease_owner=None,
                lease_until=None,
                next_attempt_at=now,
                attempts=deliveries.c.attempts - 1,
                updated_at=now,
            )
        )


async def last_windows(db: Database, subscription_ids: Iterable[int]) -> dict[int, datetime]:
    """For each subscription, the end of the last window that reached it."""
    ids = list(set(subscription_ids))
    if not ids:
        return {}
    query = (
        select(deliveries.c.subscription_id, func.max(deliveries.c.window_end))
        .where(deliveries.c.subscription_id.in_(ids), deliveries.c.status == DELIVERED)
        .group_by(deliveries.c.subscription_id)
    )
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {int(sid): end for sid, end in rows if end is not None}


async def recent_statuses(db: Database, subscription_id: int, *, limit: int) -> list[str]:
    """Statuses of the subscription's latest finished deliveries, newest first."""
    query = (
        select(deliveries.c.status)
        .where(
            deliveries.c.subscription_id == subscription_id,
            deliveries.c.status.in_([DELIVERED, DEAD]),
        )
        .order_by(deliveries.c.period.desc())
        .limit(limit)
    )
    async with db.engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def listing(
    db: Database,
    *,
    subscription_id: int | None = None,
    status: str | None = None,
    ids: Sequence[int] | None = None,
    limit: int = 100,
) -> list[Delivery]:
    query = select(deliveries).order_by(deliveries.c.period.desc(), deliveries.c.id.desc())
    if subscription_id is not None:
        query = query.where(deliveries.c.subscription_id == subscription_id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if ids is not None:
        query = query.where(deliveries.c.id.in_(list(ids)))
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit))).mappings()
        return [Delivery.from_row(row) for row in rows]
