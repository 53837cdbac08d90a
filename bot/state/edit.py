"""Editors' changes to the state, as entries of its journal (``journal.yaml``).

Each function here checks one change against a state and returns the journal entry that
makes it, or raises: ``EditError`` naming the field at fault, ``StateError`` with
``file:line: message`` for a file of new developments, ``EditConflict`` when the change
would overwrite someone else's. Storing the entry is ``bot.store.states``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bot.errors import ConfigError, EditConflict
from bot.state.history import StatusVersion, Version, updated
from bot.state.loader import State, parse_additions
from bot.state.model import Change, Development, Standing, StatusChange, Text, Update

JOURNAL = "journal.yaml"
JOURNAL_HEADER = (
    "# The editors' changes to the state, oldest first: written by `briefing state add|update|\n"
    "# status|retract`. Each change says when, who and why; the state files and this journal\n"
    "# together make the state.\n"
)


class EditError(ConfigError):
    """A change given with a bad value; ``field`` names it (``title_en``, ``standing``…)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownItem(EditError):
    """The change names a development or a topic the state does not have."""


@dataclass(frozen=True)
class Editor:
    """Who makes a change, when, and why."""

    by: str
    because: str
    at: datetime


@dataclass(frozen=True)
class DevelopmentChanges:
    """What ``state update`` changes in a development (None: unchanged)."""

    standing: str | None = None
    title_en: str | None = None
    title_fr: str | None = None
    summary_en: str | None = None
    summary_fr: str | None = None
    reported_by: tuple[str, ...] | None = None
    add_sources: tuple[str, ...] = ()


_FIELDS = {
    ("standing",): "standing",
    ("title", "en"): "title_en",
    ("title", "fr"): "title_fr",
    ("summary", "en"): "summary_en",
    ("summary", "fr"): "summary_fr",
    ("text", "en"): "en",
    ("text", "fr"): "fr",
    ("reported_by",): "reported_by",
    ("add_sources",): "add_source",
    ("because",): "because",
    ("by",): "by",
}


def _edit_error(exc: ValidationError, default: str) -> EditError:
    error = exc.errors()[0]
    loc = tuple(str(p) for p in error["loc"])
    field = next((name for key, name in _FIELDS.items() if loc[: len(key)] == key), default)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_too_short":
        message = "empty"
    return EditError(field, message)


def _validated(model: type[BaseModel], data: Mapping[str, Any], default: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _edit_error(exc, default) from None


def entry(editor: Editor, kind: str, payload: Any) -> dict[str, Any]:
    """The journal entry of one change (plain data, as YAML holds it); the author and the
    reason are checked by the journal's own rules."""
    who = {"at": editor.at, "by": editor.by, "because": editor.because}
    _validated(Change, {**who, "retract": {"id": "placeholder"}}, "because")
    return {
        "at": editor.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "by": editor.by,
        "because": editor.because,
        kind: payload,
    }


def check_expected(
    item: str, last: Version | StatusVersion, *, editor: Editor, expect: int | None
) -> None:
    """Refuse a change made on top of another editor's without saying so: ``expect`` must
    be the item's current version when given, and is required when someone else made it."""
    who = f"{last.by} at {last.at:%Y-%m-%d %H:%M} UTC" if last.by and last.at else ""
    why = f" ({last.because})" if last.because else ""
    if expect is not None and expect != last.number:
        raise EditConflict(
            f"{item} is at revision {last.number}, not {expect}"
            + (f": changed by {who}{why}" if who else "")
            + f"; review it (briefing state history {item}) and repeat with "
            f"--expect-revision {last.number}"
        )
    if expect is None and last.by is not None and last.by != editor.by:
        raise EditConflict(
            f"{item} was last changed by {who}{why}; review it (briefing state history "
            f"{item}) and repeat with --expect-revision {last.number} to change it on top of that"
        )


def _current(state: State, dev_id: str) -> Version:
    versions = state.history.get(dev_id)
    if not versions:
        raise UnknownItem("id", f"no development {dev_id!r} in the state")
    if versions[-1].retracted:
        raise EditError("id", f"{dev_id} is retracted")
    return versions[-1]


def add(state: State, text: str, display: str, *, editor: Editor) -> dict[str, Any]:
    """The entry adding the developments (and actors, sources) of a file; they are
    recorded at the time of the change."""
    additions = parse_additions(text, display, state)
    data = additions.model_dump(mode="json", exclude_defaults=True)
    for dev in data.get("developments", []):
        dev["recorded"] = editor.at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return entry(editor, "add", data)


def update(
    state: State,
    dev_id: str,
    changes: DevelopmentChanges,
    *,
    editor: Editor,
    expect: int | None = None,
) -> dict[str, Any]:
    """The entry changing a development's standing, title, summary, attribution or
    sources."""
    if changes == DevelopmentChanges():
        raise EditError(
            "update",
            "nothing to change: give a standing, a title, a summary, who reports it or a source",
        )
    last = _current(state, dev_id)
    check_expected(dev_id, last, editor=editor, expect=expect)
    dev = last.development
    data: dict[str, Any] = {"id": dev_id}
    if changes.standing is not None:
        if changes.standing not in {s.value for s in Standing}:
            known = ", ".join(s.value for s in Standing)
            raise EditError("standing", f"unknown standing {changes.standing!r} (known: {known})")
        data["standing"] = changes.standing
    for name in ("title", "summary"):
        en, fr = getattr(changes, f"{name}_en"), getattr(changes, f"{name}_fr")
        if en is not None or fr is not None:
            old: Text = getattr(dev, name)
            data[name] = {
                "en": en if en is not None else old.en,
                "fr": fr if fr is not None else old.fr,
            }
    if changes.reported_by is not None:
        for actor in changes.reported_by:
            if actor not in state.actors:
                raise EditError("reported_by", f"unknown actor {actor!r}")
        data["reported_by"] = list(changes.reported_by)
    for source in changes.add_sources:
        if source not in state.sources:
            raise EditError("add_source", f"unknown source {source!r}")
    if changes.add_sources:
        data["add_sources"] = list(changes.add_sources)
    parsed: Update = _validated(Update, data, "id")
    try:
        updated(dev, parsed)
    except ValidationError as exc:
        raise _edit_error(exc, "standing") from None
    except ValueError as exc:
        raise EditError("update", str(exc)) from None
    return entry(editor, "update", parsed.model_dump(mode="json", exclude_defaults=True))


def status(
    state: State, topic: str, *, en: str, fr: str, editor: Editor, expect: int | None = None
) -> dict[str, Any]:
    """The entry giving a topic a new status line."""
    if topic not in state.topics:
        raise UnknownItem("topic", f"unknown topic {topic!r} (known: {', '.join(state.topics)})")
    check_expected(topic, state.statuses[topic][-1], editor=editor, expect=expect)
    change: StatusChange = _validated(
        StatusChange, {"topic": topic, "text": {"en": en, "fr": fr}}, "text"
    )
    if change.text == state.statuses[topic][-1].text:
        raise EditError("text", f"{topic}: the status line is already that")
    return entry(editor, "status", change.model_dump(mode="json"))


def retract(
    state: State, dev_id: str, *, editor: Editor, expect: int | None = None
) -> dict[str, Any]:
    """The entry withdrawing a development (its history is kept)."""
    check_expected(dev_id, _current(state, dev_id), editor=editor, expect=expect)
    return entry(editor, "retract", {"id": dev_id})


def with_entry(files: Mapping[str, str], change: dict[str, Any]) -> dict[str, str]:
    """The state files with ``change`` appended to the journal (created if missing)."""
    journal = next((name for name in files if name.rsplit("/", 1)[-1] == JOURNAL), JOURNAL)
    entries: list[Any] = []
    if journal in files:
        data = yaml.safe_load(files[journal]) or {}
        entries = list(data.get("changes") or []) if isinstance(data, dict) else []
    text = yaml.safe_dump(
        {"changes": [*entries, change]}, allow_unicode=True, sort_keys=False, width=100
    )
    return {**files, journal: JOURNAL_HEADER + text}


def describe(change: Mapping[str, Any]) -> str:
    """One line saying what a journal entry does: ``update pokrovsk (standing → confirmed)``."""
    if "add" in change:
        ids = [d["id"] for d in change["add"].get("developments", [])]
        return f"add {', '.join(ids) or 'actors and sources'}"
    if "update" in change:
        fields = [k for k in change["update"] if k != "id"]
        detail = ", ".join(
            f"standing → {change['update']['standing']}" if k == "standing" else k.replace("_", " ")
            for k in fields
        )
        return f"update {change['update']['id']} ({detail})"
    if "status" in change:
        return f"status of {change['status']['topic']}"
    return f"retract {change['retract']['id']}"


def describe_version(version: Version | StatusVersion) -> str:
    """What one version of a development or status line is."""
    if isinstance(version, StatusVersion):
        return version.text.en
    dev: Development = version.development
    return f"{version.kind}: {dev.standing.value} — {dev.title.en}"
