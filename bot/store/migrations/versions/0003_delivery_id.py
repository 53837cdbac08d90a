"""One name for a delivery's stable id: ``delivery_id`` (was ``delivery_key``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("deliveries", "delivery_key", new_column_name="delivery_id")


def downgrade() -> None:
    op.alter_column("deliveries", "delivery_id", new_column_name="delivery_key")
