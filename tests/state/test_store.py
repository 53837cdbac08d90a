"""The state's editing operations on SQLite and PostgreSQL: revisions, concurrent edits,
and what a digest composed from the stored state reports."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.digest import ReaderOptions, Window, compose
from bot.errors import EditConflict
from bot.state.edit import DevelopmentChanges, Editor
from bot.store import states
from tests.conftest import SEED_STATE

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def editor(by: str, minutes: int = 0, because: str = "checked") -> Editor:
    return Editor(by=by, because=because, at=T0 + timedelta(minutes=minutes))


async def test_two_editors_at_once_one_lands_and_the_other_is_refused(db) -> None:
    await states.import_state(db, SEED_STATE, now=T0 - timedelta(days=1))

    async def change(by: str, standing: str) -> states.Edited | EditConflict:
        try:
            return await states.update_development(
                db, "vovchansk-capture-claimed", DevelopmentChanges(standing=standing),
                editor=editor(by),
            )  # fmt: skip
        except EditConflict as exc:
            return exc

    results = await asyncio.gather(change("alice", "confirmed"), change("bob", "expected"))
    landed = [r for r in results if isinstance(r, states.Edited)]
    refused = [r for r in results if isinstance(r, EditConflict)]
    assert len(landed) == 1 and len(refused) == 1
    assert "--expect-revision 2" in str(refused[0])
    history = await states.item_history(db, "vovchansk-capture-claimed")
    assert [v.version for v in history] == [1, 2]
    assert len(await states.revisions(db)) == 2  # the import and one edit, nothing lost


async def test_versions_are_kept_and_the_digest_reads_them_by_window(db) -> None:
    await states.import_state(db, SEED_STATE, now=T0 - timedelta(days=1))
    await states.update_development(
        db, "pokrovsk-capture-contested", DevelopmentChanges(standing="confirmed"),
        editor=editor("alice", 10, "confirmed by Kyiv"),
    )  # fmt: skip
    await states.retract_development(
        db, "yermak-resigns", editor=editor("alice", 20, "wrong person")
    )
    await states.change_status(
        db, "military", en="Fallen.", fr="Tombée.", editor=editor("alice", 30, "update")
    )
    state = await states.current_state(db)
    assert state.updated_at == T0 + timedelta(minutes=30)
    assert "yermak-resigns" not in {d.id for d in state.developments}

    def digest(start: datetime, end: datetime):  # type: ignore[no-untyped-def]
        return compose(state, ReaderOptions(), Window(start=start, end=end))

    before = digest(T0 - timedelta(hours=1), T0)  # before any edit: as imported
    military = next(s for s in before.sections if s.topic == "military")
    assert military.changes == [] and military.status != "Fallen."
    assert [d.id for d in military.contested] == ["pokrovsk-capture-contested"]
    assert before.stale

    during = digest(T0, T0 + timedelta(hours=1))
    assert not during.stale and during.as_of == T0 + timedelta(minutes=30)
    military = next(s for s in during.sections if s.topic == "military")
    (change,) = military.changes
    assert (change.kind, change.previous_standing, change.development.standing) == (
        "standing",
        "contested",
        "confirmed",
    )
    assert change.reason == "confirmed by Kyiv" and military.contested == []
    assert military.status == "Fallen." and military.status_changed
    politics = next(s for s in during.sections if s.topic == "politics")
    assert [(c.kind, c.reason) for c in politics.changes] == [("retracted", "wrong person")]

    after = digest(T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert after.is_empty and all(not s.changes for s in after.sections)


async def test_an_update_that_changes_nothing_or_a_retracted_item_is_refused(db) -> None:
    await states.import_state(db, SEED_STATE, now=T0)
    with pytest.raises(Exception, match="changes nothing"):
        await states.update_development(
            db, "yermak-resigns", DevelopmentChanges(standing="confirmed"), editor=editor("a")
        )
    await states.retract_development(db, "yermak-resigns", editor=editor("a", 1))
    with pytest.raises(Exception, match="yermak-resigns is retracted"):
        await states.retract_development(db, "yermak-resigns", editor=editor("a", 2))
