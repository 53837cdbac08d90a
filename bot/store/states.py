"""State revisions in the database: every import of state files and every editor's change.

The operations here are what the CLI and the HTTP API call: each takes typed inputs,
validates the change with the same rules as the files, stores it as a new revision (the
earlier ones are kept) and returns a typed result. Two changes made on the same revision
cannot both land (``parent_id`` is unique): the second is recomputed on the new one, where
``--expect-revision`` and the author checks see the first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.errors import ConfigError, EditConflict
from bot.state import State, parse_state, read_state_files
from bot.state import edit as edits
from bot.state.edit import DevelopmentChanges, Editor
from bot.state.history import StatusVersion, Version
from bot.state.loader import revision_of
from bot.store.database import Database
from bot.store.tables import state_revisions

ATTEMPTS = 5


@dataclass(frozen=True)
class Imported:
    revision: str
    created: bool
    state: State


@dataclass(frozen=True)
class Edited:
    """A change stored: the state's new revision, and the changed item's new version."""

    revision: str
    number: int  # the state revision's sequence number
    item: str  # a development id, or a topic for a status line
    version: int
    summary: str
    state: State


@dataclass(frozen=True)
class RevisionInfo:
    """One stored revision of the state: who made it, when, what and why."""

    number: int
    revision: str
    at: datetime
    by: str | None
    summary: str
    because: str | None


@dataclass(frozen=True)
class ItemVersion:
    """One version of a development or a status line."""

    item: str
    version: int
    at: datetime | None
    kind: str
    by: str | None
    because: str | None
    standing: str | None
    title: str | None
    text: str


@dataclass(frozen=True)
class Exported:
    revision: str
    files: list[Path]


@dataclass(frozen=True)
class _Row:
    id: int
    revision: str
    files: dict[str, str]


async def _latest(db: Database) -> _Row | None:
    async with db.engine.connect() as conn:
        query = (
            select(state_revisions.c.id, state_revisions.c.revision, state_revisions.c.files)
            .order_by(state_revisions.c.id.desc())
            .limit(1)
        )
        row = (await conn.execute(query)).first()
    return _Row(row.id, row.revision, dict(row.files)) if row else None


async def _store(
    db: Database,
    files: Mapping[str, str],
    *,
    parent: int | None,
    source: str,
    at: datetime,
    by: str | None,
    summary: str,
    because: str | None,
) -> int | None:
    """Insert a revision made on ``parent``; None when another one was made on it first."""
    try:
        async with db.engine.begin() as conn:
            result = await conn.execute(
                state_revisions.insert().values(
                    revision=revision_of(dict(files)),
                    files=dict(files),
                    source=source,
                    imported_at=at,
                    author=by,
                    reason=because,
                    summary=summary,
                    parent_id=parent,
                )
            )
            key = result.inserted_primary_key
            return int(key[0]) if key else None
    except IntegrityError:
        return None


async def import_state(
    db: Database, path: Path, *, now: datetime, by: str | None = None, force: bool = False
) -> Imported:
    """Validate the files at ``path`` and make them the current revision; a no-op when they
    are the current revision already. Raises ``StateError`` (nothing stored) if invalid,
    ``EditConflict`` listing the editors' changes it would undo unless ``force``."""
    texts = read_state_files(path, base=path if path.is_dir() else path.parent)  # noqa: ASYNC240
    state = parse_state(texts)
    revision = revision_of(texts)
    for _ in range(ATTEMPTS):
        latest = await _latest(db)
        if latest is not None and latest.revision == revision:
            return Imported(revision=revision, created=False, state=state)
        if latest is not None and not force:
            stored = parse_state(latest.files)
            lost = [c for c in stored.changes if c not in state.changes]
            if lost:
                lines = "; ".join(
                    f"{c.at:%Y-%m-%d %H:%M} {c.by}: "
                    f"{edits.describe(c.model_dump(mode='json', exclude_none=True))}"
                    for c in lost
                )
                raise EditConflict(
                    f"{path} is older than {len(lost)} change(s) made since, which importing "
                    f"it would undo: {lines}. Export the current state (briefing state "
                    "export DIR) and edit that, or give --force to undo them"
                )
        stored_id = await _store(
            db,
            texts,
            parent=latest.id if latest else None,
            source=str(path),
            at=now,
            by=by,
            summary=f"import {path}",
            because=None,
        )
        if stored_id is not None:
            return Imported(revision=revision, created=True, state=state)
    raise EditConflict("the state kept changing while importing; try again")


async def _edit(
    db: Database,
    editor: Editor,
    make: Callable[[State], dict[str, Any]],
    item: Callable[[dict[str, Any]], str],
) -> Edited:
    for _ in range(ATTEMPTS):
        latest = await _latest(db)
        if latest is None:
            raise ConfigError("no briefing state imported yet (briefing state import)")
        change = make(parse_state(latest.files))
        files = edits.with_entry(latest.files, change)
        state = parse_state(files)
        summary = edits.describe(change)
        number = await _store(
            db,
            files,
            parent=latest.id,
            source="editor",
            at=editor.at,
            by=editor.by,
            summary=summary,
            because=editor.because,
        )
        if number is not None:
            name = item(change)
            versions = state.history.get(name) or state.statuses.get(name) or ()
            return Edited(
                revision=state.revision,
                number=number,
                item=name,
                version=versions[-1].number if versions else 1,
                summary=summary,
                state=state,
            )
    raise EditConflict("the state kept changing while editing; try again")


async def add_developments(db: Database, text: str, *, display: str, editor: Editor) -> Edited:
    """Add the developments (and the actors and sources they need) of a YAML file's text;
    ``StateError`` with ``display:line: message`` for every problem in it."""
    return await _edit(
        db,
        editor,
        lambda state: edits.add(state, text, display, editor=editor),
        lambda change: ", ".join(d["id"] for d in change["add"].get("developments", [])),
    )


async def update_development(
    db: Database,
    dev_id: str,
    changes: DevelopmentChanges,
    *,
    editor: Editor,
    expect_revision: int | None = None,
) -> Edited:
    """Change a development's standing, title, summary, attribution or sources."""
    return await _edit(
        db,
        editor,
        lambda state: edits.update(state, dev_id, changes, editor=editor, expect=expect_revision),
        lambda _: dev_id,
    )


async def change_status(
    db: Database,
    topic: str,
    *,
    en: str,
    fr: str,
    editor: Editor,
    expect_revision: int | None = None,
) -> Edited:
    """Give a topic a new status line."""
    return await _edit(
        db,
        editor,
        lambda state: edits.status(
            state, topic, en=en, fr=fr, editor=editor, expect=expect_revision
        ),
        lambda _: topic,
    )


async def retract_development(
    db: Database, dev_id: str, *, editor: Editor, expect_revision: int | None = None
) -> Edited:
    """Withdraw a development from the briefing (its history is kept)."""
    return await _edit(
        db,
        editor,
        lambda state: edits.retract(state, dev_id, editor=editor, expect=expect_revision),
        lambda _: dev_id,
    )


async def revisions(db: Database) -> list[RevisionInfo]:
    """Every stored revision of the state, oldest first."""
    columns = state_revisions.c
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(
                columns.id,
                columns.revision,
                columns.imported_at,
                columns.author,
                columns.summary,
                columns.reason,
                columns.source,
            ).order_by(columns.id)
        )
        return [
            RevisionInfo(
                number=row.id,
                revision=row.revision,
                at=row.imported_at,
                by=row.author,
                summary=row.summary or f"import {row.source}",
                because=row.reason,
            )
            for row in rows
        ]


async def item_history(db: Database, item: str) -> list[ItemVersion]:
    """Every version of a development (by id) or of a topic's status line (by topic);
    ``ConfigError`` if the state has no such item."""
    state = await current_state(db)
    versions: tuple[Version | StatusVersion, ...] = state.history.get(item) or state.statuses.get(
        item, ()
    )
    if not versions:
        raise ConfigError(f"no development or topic {item!r} in the state")
    return [_item_version(item, v) for v in versions]


def _item_version(item: str, version: Version | StatusVersion) -> ItemVersion:
    if isinstance(version, StatusVersion):
        return ItemVersion(
            item=item,
            version=version.number,
            at=version.at,
            kind="status",
            by=version.by,
            because=version.because,
            standing=None,
            title=None,
            text=version.text.en,
        )
    dev = version.development
    return ItemVersion(
        item=item,
        version=version.number,
        at=version.at,
        kind=version.kind,
        by=version.by,
        because=version.because,
        standing=dev.standing.value,
        title=dev.title.en,
        text=dev.summary.en,
    )


async def export_state(db: Database, directory: Path) -> Exported:
    """Write the current revision's files into ``directory`` (created if needed), as they
    are stored: ``state validate`` accepts them and ``state import`` gives the same
    revision. ``ConfigError`` if the directory holds other state files."""
    latest = await _latest(db)
    if latest is None:
        raise ConfigError("no briefing state imported yet (briefing state import)")
    try:
        directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
        names = {Path(name).name for name in latest.files}
        others = sorted(
            p.name
            for p in [*directory.glob("*.yaml"), *directory.glob("*.yml")]  # noqa: ASYNC240
            if p.name not in names
        )
        if others:
            raise ConfigError(
                f"{directory} holds other state files ({', '.join(others)}); "
                "export to an empty directory"
            )
        written = []
        for name, text in sorted(latest.files.items()):
            target = directory / Path(name).name
            target.write_text(text, encoding="utf-8")
            written.append(target)
    except OSError as exc:
        raise ConfigError(f"cannot write to {directory}: {exc.strerror or exc}") from exc
    return Exported(revision=latest.revision, files=written)


async def current_state(db: Database) -> State:
    """The newest stored state; ``ConfigError`` if none was imported."""
    state = await StateSource(db).latest()
    if state is None:
        raise ConfigError("no briefing state imported yet (briefing state import)")
    return state


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
