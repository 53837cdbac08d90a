"""The database tables (SQLAlchemy Core). Change them only through an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()
MAX_ID = 2**31 - 1  # ids are Integer columns: 32 bits on PostgreSQL


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("address", Text, nullable=False),
    Column("secrets", JSON, nullable=False),
    Column("topics", JSON, nullable=True),
    Column("locale", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("cron", String(120), nullable=False),
    Column("skip_empty", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False),  # active | paused | removed
    Column("paused_reason", Text, nullable=True),
    Column("unsubscribe_token", String(64), nullable=False, unique=True),
    Column("next_fire_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_subscriptions_due", "status", "next_fire_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(120), nullable=False, unique=True),
    Column("subscription_id", Integer, ForeignKey("subscriptions.id"), nullable=False),
    Column("period", UTCDateTime(), nullable=False),
    Column("trigger", String(16), nullable=False),  # bot.delivery.Trigger
    Column("status", String(16), nullable=False),  # bot.delivery.Status
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("lease_owner", String(80), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("sent_by", String(80), nullable=True),
    Column("window_start", UTCDateTime(), nullable=True),
    Column("window_end", UTCDateTime(), nullable=True),
    Column("state_revision", String(32), nullable=True),
    Column("first_part", Integer, nullable=False, default=0),
    Column("parts", Integer, nullable=False, default=0),
    Column("last_status", String(40), nullable=True),
    Column("last_answer", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    UniqueConstraint("subscription_id", "period", name="uq_deliveries_subscription_period"),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_subscription", "subscription_id", "status", "window_end"),
)

state_revisions = Table(
    "state_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("revision", String(32), nullable=False, index=True),
    Column("files", JSON, nullable=False),  # {file name: YAML text}
    Column("source", Text, nullable=False),
    Column("imported_at", UTCDateTime(), nullable=False),
    Column("author", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Column("summary", Text, nullable=True),  # what changed, e.g. "update pokrovsk (standing)"
    Column("parent_id", Integer, nullable=True),  # the revision it was made on
    Index("uq_state_revisions_parent", "parent_id", unique=True),
)

signups = Table(
    "signups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    Column("topics", JSON, nullable=True),
    Column("locale", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("cron", String(120), nullable=False),
    Column("token_hash", String(64), nullable=True, unique=True),  # None: nothing was sent
    Column("client", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("confirmed_at", UTCDateTime(), nullable=True),
    Index("ix_signups_email", "email", "created_at"),
    Index("ix_signups_client", "client", "created_at"),
)

feed_polls = Table(
    "feed_polls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url_key", String(64), nullable=False, unique=True),  # sha256 of the feed's URL
    Column("url", Text, nullable=False),
    Column("name", String(200), nullable=False),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("polled_at", UTCDateTime(), nullable=True),
    Column("last_success_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UTCDateTime(), nullable=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("next_poll_at", UTCDateTime(), nullable=True),
    Column("taken", Integer, nullable=False, default=0),
    Column("unmatched", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
)

feed_entries = Table(
    "feed_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feed_url", Text, nullable=False),
    Column("feed_name", String(200), nullable=False),
    Column("guid_key", String(64), nullable=True, index=True),
    Column("link_key", String(64), nullable=True, index=True),
    Column("guid", Text, nullable=True),
    Column("link", Text, nullable=True),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("language", String(8), nullable=False),
    Column("published_at", UTCDateTime(), nullable=True),
    Column("fetched_at", UTCDateTime(), nullable=False),
    Column("topic", String(64), nullable=True),
    Column("status", String(16), nullable=False),  # bot.feeds.store.EntryStatus
    Column("importance", Integer, nullable=False, default=2),
    Column("decided_at", UTCDateTime(), nullable=True),  # accepted, published or rejected
    Column("decided_by", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Index("ix_feed_entries_status", "status", "decided_at"),
    Index("ix_feed_entries_fetched", "fetched_at"),
)
