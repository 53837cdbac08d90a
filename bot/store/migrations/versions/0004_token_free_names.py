"""Default webhook names without their token.

A webhook subscribed without ``--name`` used to be named after its URL as then masked,
which showed the first path segment whole (where some services put the token): such names
become ``<kind> webhook on <host>``. Names chosen by people are kept.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _old_mask(url: str) -> str:
    """The masked form that served as a default name up to revision 0003 (frozen here)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    shown = "/" + segments[0] if segments else ""
    hidden = "/…" + (segments[-1][-4:] if len(segments) > 1 else "") if len(segments) > 1 else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{shown}{hidden}{'?…' if parts.query else ''}"


def upgrade() -> None:
    subscriptions = sa.table(
        "subscriptions",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("kind", sa.String),
        sa.column("address", sa.Text),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(subscriptions).where(subscriptions.c.kind != "email")).all()
    for row in rows:
        try:
            old = _old_mask(row.address)
            host = urlsplit(row.address).hostname or "an unnamed host"
        except ValueError:
            continue
        if row.name == old:
            connection.execute(
                sa.update(subscriptions)
                .where(subscriptions.c.id == row.id)
                .values(name=f"{row.kind} webhook on {host}")
            )


def downgrade() -> None:
    """Names are not turned back into URLs."""
