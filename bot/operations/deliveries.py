"""The delivery log (and the queue): each delivery with its attempts and the receiver's
last answer."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from bot.delivery import Status
from bot.store import outbox
from bot.store.database import Database


class DeliveryView(BaseModel):
    """A delivery as the CLI's ``--json`` and the API show it: ISO 8601 times, numeric
    status codes as numbers, null for none."""

    id: int
    subscription: int
    delivery_id: str = Field(description="Stable per (subscription, period): webhook-id.")
    period: str
    trigger: str
    status: Status
    attempts: int
    last_status: int | str | None = Field(
        description="The receiver's last status code (HTTP, SMTP) or 'written' (.eml)."
    )
    answer: str | None = Field(description="The receiver's last answer, secrets masked.")
    next_attempt_at: str | None
    window: list[str | None]
    parts: int
    delivered_at: str | None


def numeric(code: str | int | None) -> str | int | None:
    """A status code as a number when it is one (HTTP, SMTP), else as it is ("written")."""
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return code


def delivery_view(d: outbox.Delivery) -> DeliveryView:
    pending = d.status == Status.PENDING and d.next_attempt_at
    return DeliveryView(
        id=d.id, subscription=d.subscription_id, delivery_id=d.delivery_id,
        period=d.period.isoformat(), trigger=d.trigger, status=d.status,
        attempts=d.attempts, last_status=numeric(d.last_status), answer=d.last_answer,
        next_attempt_at=d.next_attempt_at.isoformat() if pending and d.next_attempt_at else None,
        window=[d.window_start.isoformat() if d.window_start else None,
                d.window_end.isoformat() if d.window_end else None],
        parts=d.parts,
        delivered_at=d.delivered_at.isoformat() if d.delivered_at else None,
    )  # fmt: skip


async def listing(
    db: Database,
    *,
    subscription_id: int | None = None,
    status: Status | None = None,
    statuses: Collection[Status] | None = None,
    period: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    ids: Sequence[int] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[DeliveryView]:
    """Deliveries, newest period first, filtered by subscription, status(es), ids and
    period (exactly ``period``, or ``since`` ≤ period < ``until``)."""
    found = await outbox.listing(
        db,
        subscription_id=subscription_id,
        status=status,
        statuses=statuses,
        ids=ids,
        period=period,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [delivery_view(d) for d in found]
