"""Versions of developments and status lines: what the state said at any moment.

A development from the state files has one version, recorded when the files say. Every
change in the journal (``changes:``) adds a version: an update (a new standing, a
correction, a new source) or a retraction. A status line has a version per change too.
The digest asks what stood at the start and at the end of its window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, TypeVar

from bot.state.model import Development, Standing, Text, Update

VersionKind = Literal["recorded", "added", "standing", "corrected", "updated", "retracted"]


@dataclass(frozen=True)
class Version:
    """One version of a development: its content from ``at`` on, and who changed it why."""

    number: int
    at: datetime
    kind: VersionKind
    development: Development
    by: str | None = None
    because: str | None = None

    @property
    def retracted(self) -> bool:
        return self.kind == "retracted"


@dataclass(frozen=True)
class StatusVersion:
    """One version of a topic's status line (``at`` None: it stands from the start)."""

    number: int
    at: datetime | None
    text: Text
    by: str | None = None
    because: str | None = None


class _Timed(Protocol):
    @property
    def at(self) -> datetime | None: ...


V = TypeVar("V", bound=_Timed)


def standing_at(versions: Sequence[V], moment: datetime) -> V | None:
    """The version that stood just before ``moment`` (changes at ``moment`` are not yet in)."""
    found = None
    for version in versions:
        if version.at is None or version.at < moment:
            found = version
    return found


def updated(dev: Development, update: Update) -> tuple[Development, VersionKind]:
    """``dev`` with ``update`` applied, and what kind of change that is. Leaving the
    contested standing drops the sides. Raises ``ValidationError`` (the model's rules) or
    ``ValueError`` when the update changes nothing."""
    data = dev.model_dump()
    if update.standing is not None:
        data["standing"] = update.standing
        if update.standing is not Standing.CONTESTED and update.sides is None:
            data["sides"] = []
    for name in ("title", "summary", "reported_by", "sides"):
        value = getattr(update, name)
        if value is not None:
            data[name] = value.model_dump() if hasattr(value, "model_dump") else value
    data["sources"] = [*dev.sources, *(s for s in update.add_sources if s not in dev.sources)]
    new = Development.model_validate(data)
    if new == dev:
        raise ValueError(f"{dev.id}: the update changes nothing")
    if new.standing is not dev.standing:
        return new, "standing"
    if any(
        getattr(new, n) != getattr(dev, n) for n in ("title", "summary", "reported_by", "sides")
    ):
        return new, "corrected"
    return new, "updated"
