"""State revisions made by editors: who made each one, why, what it changed, and the
revision it was made on (unique, so two edits made on the same revision cannot both land).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("state_revisions", sa.Column("author", sa.String(200), nullable=True))
    op.add_column("state_revisions", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("state_revisions", sa.Column("summary", sa.Text(), nullable=True))
    op.add_column("state_revisions", sa.Column("parent_id", sa.Integer(), nullable=True))
    op.create_index("uq_state_revisions_parent", "state_revisions", ["parent_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_state_revisions_parent", table_name="state_revisions")
    for column in ("parent_id", "summary", "reason", "author"):
        op.drop_column("state_revisions", column)
