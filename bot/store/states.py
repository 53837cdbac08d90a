"""State revisions in the database: every import of ``config/state`` that changed something."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bot.state import State, parse_state, read_state_files
from bot.state.loader import revision_of
from bot.store.database import Database
from bot.store.tables import state_revisions


@dataclass(frozen=True)
class Imported:
    revision: str
    created: bool
    state: State


async def import_state(db: Database, path: Path, *, now: datetime) -> Imported:
    """Validate the files at ``path`` and make them the current revision; a no-op when they
    are the current revision already. Raises ``StateError`` (nothing stored) if invalid."""
    texts = read_state_files(path, base=path if path.is_dir() else path.parent)  # noqa: ASYNC240
    state = parse_state(texts)
    revision = revision_of(texts)
    if await latest_revision(db) == revision:
        return Imported(revision=revision, created=False, state=state)
    async with db.engine.begin() as conn:
        await conn.execute(
            state_revisions.insert().values(
                revision=revision, files=texts, source=str(path), imported_at=now
            )
        )
    return Imported(revision=revision, created=True, state=state)


async def latest_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        query = select(state_revisions.c.revision).order_by(state_revisions.c.id.desc()).limit(1)
        value: str | None = (await conn.execute(query)).scalar_one_or_none()
    return value


async def load_revision(db: Database, revision: str) -> State:
    async with db.engine.connect() as conn:
        query = (
            select(state_revisions.c.files)
            .where(state_revisions.c.revision == revision)
            .order_by(state_revisions.c.id.desc())
            .limit(1)
        )
        files: dict[str, str] = (await conn.execute(query)).scalar_one()
    return parse_state(files)


class StateSource:
    """The latest stored state, parsed once per revision."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._state: State | None = None

    async def latest(self) -> State | None:
        revision = await latest_revision(self._db)
        if revision is None:
            return None
        if self._state is None or self._state.revision != revision:
            self._state = await load_revision(self._db, revision)
        return self._state
