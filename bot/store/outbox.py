"""The outbox: one row per (subscription, period), from scheduling to the delivery log.

Rows are claimed under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several
workers, in one process or many, never send the same row at once; a row whose lease ran
out (a crashed worker) is claimed again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from bot.delivery import Outcome, Status, Trigger
from bot.store.database import Database
from bot.store.tables import UTCDateTime, deliveries, subscriptions

UNSENT = (Trigger.MANUAL, Trigger.FORCED)
_ID_ARRAY = postgresql.ARRAY(BigInteger)


def _among(column: Any, ids: Sequence[int], engine: AsyncEngine | AsyncConnection) -> Any:
    """``column IN ids``. On PostgreSQL ``column = ANY(:array)``: one statement text whatever
    the number of ids, so the server parses and plans it once per connection instead of once
    per list length."""
    if engine.dialect.name == "postgresql":
        return column == any_(literal(list(ids), _ID_ARRAY))
    return column.in_(list(ids))


@contextlib.asynccontextmanager
async def _bookkeeping(db: Database) -> AsyncIterator[AsyncConnection]:
    """A transaction for claims and outcomes. On PostgreSQL its commit does not wait for
    the WAL to reach the disk: if the server itself crashes, the last fraction of a second of
    claims and outcomes may be lost, which leaves rows leased or sending as if their worker
    had died, and the lease already covers that (they are claimed again when it runs out)."""
    async with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
        yield conn


def delivery_id(subscription_id: int, period: datetime, *, trigger: Trigger) -> str:
    """The stable id of a delivery (``webhook-id``, ``Message-ID``) for its whole life."""
    stamp = period.strftime("%Y%m%dT%H%M%S")
    if trigger in UNSENT:  # manual sends may come in the same second
        return f"dlv_{subscription_id}_{stamp}{period.strftime('.%f')}Z_manual"
    return f"dlv_{subscription_id}_{stamp}Z"


@dataclass(frozen=True)
class Delivery:
    """One outbox row."""

    id: int
    delivery_id: str
    subscription_id: int
    period: datetime
    trigger: Trigger
    status: Status
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
        values = dict(row)
        values["status"] = Status(values["status"])
        values["trigger"] = Trigger(values["trigger"])
        return cls(**values)


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of a row it claimed."""

    id: int
    delivery_id: str
    subscription_id: int
    period: datetime
    trigger: Trigger
    attempts: int
    first_part: int
    window_start: datetime | None


_CLAIMED = [deliveries.c[name] for name in Claimed.__dataclass_fields__]


@dataclass(frozen=True)
class Finished:
    """An outcome to record for a claimed row, with the window and state revision its digest
    was composed from (None when it failed before that)."""

    row_id: int
    subscription_id: int
    outcome: Outcome
    window: tuple[datetime, datetime] | None = None
    revision: str | None = None


def new_row(
    subscription_id: int,
    period: datetime,
    *,
    now: datetime,
    trigger: Trigger = Trigger.SCHEDULED,
    status: Status = Status.PENDING,
    note: str | None = None,
) -> dict[str, Any]:
    """Values for a new outbox row."""
    return {
        "delivery_id": delivery_id(subscription_id, period, trigger=trigger),
        "subscription_id": subscription_id,
        "period": period,
        "trigger": trigger,
        "status": status,
        "attempts": 0,
        "next_attempt_at": now if status == Status.PENDING else None,
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


async def queue_manual(
    db: Database,
    *,
    now: datetime,
    subscription_ids: Sequence[int] | None = None,
    force: bool = False,
) -> list[int]:
    """Queue a manual delivery at ``now`` for the subscriptions ``subscription_ids`` (every
    active one if None), in one statement. With ``force`` a paused one chosen by id gets a
    forced row; without, its row is skipped when a worker takes it (it was paused after the
    send was checked). Return the new rows' ids."""
    chosen = (
        subscriptions.c.status == "active"
        if subscription_ids is None
        else subscriptions.c.id.in_(list(subscription_ids))
    )
    stamp = now.strftime("%Y%m%dT%H%M%S.%f")
    trigger = case(
        (and_(literal(force), subscriptions.c.status == "paused"), Trigger.FORCED.value),
        else_=Trigger.MANUAL.value,
    )
    rows = select(
        literal("dlv_") + cast(subscriptions.c.id, String) + literal(f"_{stamp}Z_manual"),
        subscriptions.c.id,
        literal(now, UTCDateTime()),
        trigger,
        literal(Status.PENDING.value),
        literal(0),
        literal(now, UTCDateTime()),
        literal(0),
        literal(0),
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
    ).where(chosen)
    columns = [
        "delivery_id", "subscription_id", "period", "trigger", "status", "attempts",
        "next_attempt_at", "first_part", "parts", "created_at", "updated_at",
    ]  # fmt: skip
    statement = deliveries.insert().from_select(columns, rows).returning(deliveries.c.id)
    async with db.engine.begin() as conn:
        return list((await conn.execute(statement)).scalars())


async def claim(
    db: Database,
    *,
    owner: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    max_attempts: int,
    period: datetime | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` due rows for ``owner`` until ``now + lease``.

    A row whose lease ran out after its last allowed attempt (its workers kept dying while
    sending it) is not taken again: it ends dead.
    """
    lapsed = and_(deliveries.c.status == Status.SENDING, deliveries.c.lease_until < now)
    pending = and_(deliveries.c.status == Status.PENDING, deliveries.c.next_attempt_at <= now)
    due = or_(pending, and_(lapsed, deliveries.c.attempts < max_attempts))
    query = (
        select(deliveries.c.id, deliveries.c.status, deliveries.c.attempts)
        .where(or_(pending, lapsed))
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    if period is not None:
        query = query.where(deliveries.c.period == period)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    async with _bookkeeping(db) as conn:
        found = (await conn.execute(query)).all()
        exhausted = {i for i, status, n in found if status == Status.SENDING and n >= max_attempts}
        if exhausted:
            await conn.execute(
                update(deliveries)
                .where(_among(deliveries.c.id, sorted(exhausted), conn), lapsed)
                .values(
                    status=Status.DEAD,
                    lease_owner=None,
                    lease_until=None,
                    last_status="error",
                    last_answer=f"given up: the worker sending it stopped {max_attempts} times "
                    "before recording an outcome",
                    updated_at=now,
                )
            )
        ids = [i for i, _, _ in found if i not in exhausted]
        if not ids:
            return []
        rows = (
            await conn.execute(
                update(deliveries)
                .where(_among(deliveries.c.id, ids, conn), due)
                .values(
                    status=Status.SENDING,
                    lease_owner=owner,
                    lease_until=now + lease,
                    attempts=deliveries.c.attempts + 1,
                    updated_at=now,
                )
                .returning(*_CLAIMED)
            )
        ).mappings()
        return [Claimed(**{**row, "trigger": Trigger(row["trigger"])}) for row in rows]


def _held(db: Database, ids: Sequence[int], owner: str) -> ColumnElement[bool]:
    """Rows among ``ids`` that ``owner`` is sending."""
    return and_(
        _among(deliveries.c.id, ids, db.engine),
        deliveries.c.lease_owner == owner,
        deliveries.c.status == Status.SENDING,
    )


async def renew(db: Database, ids: Sequence[int], *, owner: str, until: datetime) -> None:
    """Extend the lease on rows this worker is still sending."""
    if not ids:
        return
    async with db.engine.begin() as conn:
        await conn.execute(
            update(deliveries).where(_held(db, ids, owner)).values(lease_until=until)
        )


async def record(db: Database, finished: Sequence[Finished], *, owner: str, now: datetime) -> None:
    """Write outcomes in one transaction, one statement per kind of outcome.

    Only rows still leased by ``owner`` are touched, so a worker whose lease ran out cannot
    overwrite the work of the one that took the row over.
    """
    by_status: dict[Status, list[Finished]] = {}
    for item in finished:
        by_status.setdefault(item.outcome.status, []).append(item)
    if not by_status:
        return
    async with _bookkeeping(db) as conn:
        for status, items in by_status.items():
            await _mark(conn, status, items, owner=owner, now=now)


_WRITTEN = {
    Status.DELIVERED: ("delivered_at", "parts"),
    Status.PENDING: ("next_attempt_at", "first_part"),
    Status.DEAD: ("first_part",),
    Status.SKIPPED: (),
}


async def _mark(
    conn: AsyncConnection, status: Status, items: list[Finished], *, owner: str, now: datetime
) -> None:
    """Record outcomes of one status: what every outcome sets, plus that status's own. Rows
    with the same outcome (a fan-out's "200 ok") are written by one statement."""
    own = _WRITTEN[status]
    among = (
        deliveries.c.id == any_(bindparam("row_ids", type_=_ID_ARRAY))
        if conn.dialect.name == "postgresql"
        else deliveries.c.id.in_(bindparam("row_ids", expanding=True))
    )
    statement = (
        update(deliveries)
        .where(among)
        .where(deliveries.c.lease_owner == owner)
        .values(
            status=status, lease_owner=None, lease_until=None, sent_by=owner, updated_at=now,
            last_status=bindparam("v_code"), last_answer=bindparam("v_answer"),
            window_start=func.coalesce(bindparam("v_start"), deliveries.c.window_start),
            window_end=func.coalesce(bindparam("v_end"), deliveries.c.window_end),
            state_revision=func.coalesce(bindparam("v_revision"), deliveries.c.state_revision),
            **{column: bindparam(f"v_{column}") for column in own},
        )
    )  # fmt: skip
    alike: dict[tuple[Any, ...], list[int]] = {}
    for item in items:
        outcome, window = item.outcome, item.window or (None, None)
        values = {
            "delivered_at": now, "parts": outcome.parts, "first_part": outcome.parts,
            "next_attempt_at": outcome.retry_at,
        }  # fmt: skip
        key = (
            outcome.code, outcome.answer[:2000], window[0], window[1], item.revision,
            *(values[column] for column in own),
        )  # fmt: skip
        alike.setdefault(key, []).append(item.row_id)
    names = ["v_code", "v_answer", "v_start", "v_end", "v_revision", *(f"v_{c}" for c in own)]
    for key, row_ids in alike.items():
        for start in range(0, len(row_ids), 500):
            params = dict(zip(names, key, strict=True))
            await conn.execute(statement, {**params, "row_ids": row_ids[start : start + 500]})


async def release(db: Database, ids: Sequence[int], *, owner: str, now: datetime) -> None:
    """Give rows back to the queue (at shutdown), as if they had not been tried."""
    if not ids:
        return
    async with db.engine.begin() as conn:
        await conn.execute(
            update(deliveries)
            .where(_held(db, ids, owner))
            .values(
                status=Status.PENDING,
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
        .where(
            _among(deliveries.c.subscription_id, ids, db.engine),
            deliveries.c.status == Status.DELIVERED,
        )
        .group_by(deliveries.c.subscription_id)
    )
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {int(sid): end for sid, end in rows if end is not None}


def _filtered(
    query: Select[Any],
    *,
    subscription_id: int | None = None,
    statuses: Collection[str] | None = None,
    ids: Sequence[int] | None = None,
    period: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    if subscription_id is not None:
        query = query.where(deliveries.c.subscription_id == subscription_id)
    if statuses is not None:
        query = query.where(deliveries.c.status.in_(list(statuses)))
    if ids is not None:
        query = query.where(deliveries.c.id.in_(list(ids)))
    if period is not None:
        query = query.where(deliveries.c.period == period)
    if since is not None:
        query = query.where(deliveries.c.period >= since)
    if until is not None:
        query = query.where(deliveries.c.period < until)
    return query


async def listing(
    db: Database,
    *,
    subscription_id: int | None = None,
    status: str | None = None,
    statuses: Collection[str] | None = None,
    ids: Sequence[int] | None = None,
    period: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Delivery]:
    """Rows, newest period first, filtered by any of the arguments (``since`` ≤ period <
    ``until``), ``limit`` of them after skipping ``offset``."""
    query = _filtered(
        select(deliveries).order_by(deliveries.c.period.desc(), deliveries.c.id.desc()),
        subscription_id=subscription_id,
        statuses=[status] if status is not None else statuses,
        ids=ids,
        period=period,
        since=since,
        until=until,
    )
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit).offset(offset))).mappings()
        return [Delivery.from_row(row) for row in rows]


async def counts(db: Database, *, period: datetime | None = None) -> dict[Status, int]:
    """How many rows are in each status (of one period, if given)."""
    query = _filtered(
        select(deliveries.c.status, func.count()).group_by(deliveries.c.status), period=period
    )
    async with db.engine.connect() as conn:
        return {Status(status): int(n) for status, n in (await conn.execute(query)).all()}


async def oldest_due(db: Database, *, now: datetime) -> datetime | None:
    """When the longest-waiting pending row became due (None: none is due)."""
    query = select(func.min(deliveries.c.next_attempt_at)).where(
        deliveries.c.status == Status.PENDING, deliveries.c.next_attempt_at <= now
    )
    async with db.engine.connect() as conn:
        value: datetime | None = (await conn.execute(query)).scalar_one_or_none()
    return value


async def prune(db: Database, *, before: datetime) -> int:
    """Delete finished rows whose period is older than ``before``, keeping each
    subscription's latest delivered row (its next digest's window starts where that one
    ended); return how many were deleted. Pending and sending rows are never touched."""
    later = deliveries.alias("later")
    superseded = (
        select(later.c.id)
        .where(
            later.c.subscription_id == deliveries.c.subscription_id,
            later.c.status == Status.DELIVERED,
            later.c.period > deliveries.c.period,
        )
        .exists()
    )
    statement = deliveries.delete().where(
        deliveries.c.period < before,
        or_(
            deliveries.c.status.in_([Status.DEAD, Status.SKIPPED]),
            and_(deliveries.c.status == Status.DELIVERED, superseded),
        ),
    )
    async with db.engine.begin() as conn:
        return int((await conn.execute(statement)).rowcount)
