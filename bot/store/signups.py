"""Email sign-ups from the public page, waiting for the reader to confirm them.

A sign-up is kept with the hash of its confirmation token (never the token itself), the
options the reader chose and the client that asked, until it is confirmed or expires.
Every request leaves a row, even one that sent nothing (an address already subscribed),
so that the limits per address and per client count them all.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from bot.store.database import Database
from bot.store.tables import signups, subscriptions

EXPIRY = timedelta(hours=48)
"""How long a confirmation link works."""


@dataclass(frozen=True)
class SignUp:
    """What a reader asked for on the public page."""

    email: str
    topics: tuple[str, ...] | None
    locale: str
    timezone: str
    cron: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def request(
    db: Database, signup: SignUp, *, client: str, now: datetime, send: bool
) -> str | None:
    """Record a request; return a new confirmation token if ``send`` (else None)."""
    token = secrets.token_urlsafe(24) if send else None
    async with db.engine.begin() as conn:
        await conn.execute(delete(signups).where(signups.c.created_at < now - EXPIRY))
        await conn.execute(
            signups.insert().values(
                email=signup.email,
                topics=list(signup.topics) if signup.topics else None,
                locale=signup.locale,
                timezone=signup.timezone,
                cron=signup.cron,
                token_hash=token_hash(token) if token else None,
                client=client[:64],
                created_at=now,
                expires_at=now + EXPIRY,
            )
        )
    return token


async def recent(
    db: Database, *, since: datetime, email: str | None = None, client: str | None = None
) -> int:
    """How many requests for ``email`` (or from ``client``) came after ``since``."""
    query = select(func.count()).select_from(signups).where(signups.c.created_at > since)
    if email is not None:
        query = query.where(func.lower(signups.c.email) == email.lower())
    if client is not None:
        query = query.where(signups.c.client == client[:64])
    async with db.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def pending(db: Database, token: str, *, now: datetime) -> SignUp | None:
    """The unconfirmed, unexpired sign-up whose link holds ``token``."""
    query = select(signups).where(
        signups.c.token_hash == token_hash(token),
        signups.c.confirmed_at.is_(None),
        signups.c.expires_at > now,
    )
    async with db.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    topics = tuple(row["topics"]) if row["topics"] else None
    return SignUp(row["email"], topics, row["locale"], row["timezone"], row["cron"])


async def confirmed(db: Database, token: str, *, now: datetime) -> bool:
    """Mark the sign-up of ``token`` confirmed; False if it was not pending."""
    async with db.engine.begin() as conn:
        result = await conn.execute(
            update(signups)
            .where(
                signups.c.token_hash == token_hash(token),
                signups.c.confirmed_at.is_(None),
                signups.c.expires_at > now,
            )
            .values(confirmed_at=now)
        )
    return bool(result.rowcount)


async def subscribed(db: Database, email: str) -> bool:
    """Whether ``email`` has an email subscription that is not removed."""
    query = (
        select(func.count())
        .select_from(subscriptions)
        .where(
            subscriptions.c.kind == "email",
            func.lower(subscriptions.c.address) == email.lower(),
            subscriptions.c.status != "removed",
        )
    )
    async with db.engine.connect() as conn:
        return bool((await conn.execute(query)).scalar_one())
