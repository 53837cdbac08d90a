"""News feeds: each feed's poll state, and the entries taken from feeds (reports).

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_polls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url_key", sa.String(64), nullable=False, unique=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("etag", sa.Text, nullable=True),
        sa.Column("last_modified", sa.Text, nullable=True),
        sa.Column("polled_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_error_at", UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("next_poll_at", UTCDateTime(), nullable=True),
        sa.Column("taken", sa.Integer, nullable=False),
        sa.Column("unmatched", sa.Integer, nullable=False),
        sa.Column("duplicates", sa.Integer, nullable=False),
    )
    op.create_table(
        "feed_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feed_url", sa.Text, nullable=False),
        sa.Column("feed_name", sa.String(200), nullable=False),
        sa.Column("guid_key", sa.String(64), nullable=True),
        sa.Column("link_key", sa.String(64), nullable=True),
        sa.Column("guid", sa.Text, nullable=True),
        sa.Column("link", sa.Text, nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.Column("topic", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("importance", sa.Integer, nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_feed_entries_guid_key", "feed_entries", ["guid_key"])
    op.create_index("ix_feed_entries_link_key", "feed_entries", ["link_key"])
    op.create_index("ix_feed_entries_status", "feed_entries", ["status", "decided_at"])
    op.create_index("ix_feed_entries_fetched", "feed_entries", ["fetched_at"])


def downgrade() -> None:
    op.drop_table("feed_entries")
    op.drop_table("feed_polls")
