"""The Digest: what one reader gets, as pure data, before any rendering.

Its JSON form (``Digest.model_dump(mode="json")``) is a public, versioned schema:
``schema_version`` changes whenever a field is removed or changes meaning.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 2


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class WhenView(_View):
    """When something happened, as the state says it, plus the reader's local time if known."""

    at: str
    precision: Literal["month", "day", "time"]
    qualifier: str | None = None
    timezone: str | None = None
    reader_time: datetime | None = None


class ActorView(_View):
    id: str
    name: str
    role: str | None = None


class SideView(_View):
    actor: ActorView
    position: str


class FigureView(_View):
    label: str
    value: float
    unit: str | None = None
    approximate: bool = False
    development: str
    period: WhenView | None = None  # the period the figure describes
    estimate: bool = False  # an estimate, by ``estimated_by``
    estimated_by: list[ActorView] = []


class DevelopmentView(_View):
    id: str
    topic: str
    title: str
    summary: str
    standing: Literal["confirmed", "claimed", "contested", "expected"]
    when: WhenView | None
    recorded: datetime
    is_new: bool
    importance: int
    reported_by: list[ActorView]
    sides: list[SideView]
    figures: list[FigureView]
    sources: list[str]


class ChangeView(_View):
    """A development that existed before the window and changed in it: its standing
    (``previous_standing`` → the development's), a correction or an update, or a
    retraction; ``reason`` is the editor's."""

    kind: Literal["standing", "corrected", "updated", "retracted"]
    development: DevelopmentView
    previous_standing: Literal["confirmed", "claimed", "contested", "expected"] | None = None
    at: datetime
    reason: str


class GlanceItem(_View):
    topic: str
    text: str
    development: str | None = None
    change: Literal["standing", "corrected", "updated", "retracted"] | None = None
    since: datetime | None = None  # a status line: since when it stands


class Section(_View):
    topic: str
    name: str
    status: str | None  # None: no status recorded before the window's end
    status_since: datetime | None = None
    status_changed: bool = False  # changed within the window
    new: list[DevelopmentView]
    changes: list[ChangeView] = []
    contested: list[DevelopmentView]
    figures: list[FigureView]


class SourceView(_View):
    id: str
    kind: str | None = None  # what it is, when it has no title ("news report")
    title: str | None
    publisher: str | None
    published: date
    language: str = "en"
    url: str | None


class NewsView(_View):
    """A report taken from a news feed: in its own language (never translated), attributed
    to its feed, under the topic its keywords (or an editor) chose."""

    id: int
    topic: str
    title: str
    summary: str
    language: Literal["en", "fr"]
    standing: Literal["reported"] = "reported"
    source: str
    url: str | None
    published: datetime | None
    recorded: datetime


class Digest(_View):
    schema_version: int = SCHEMA_VERSION
    story: str
    locale: Literal["en", "fr"]
    timezone: str
    date: date
    generated_at: datetime
    window_start: datetime
    window_end: datetime
    state_revision: str
    as_of: datetime | None = None  # when the state last changed before the window's end
    stale: bool = False  # as_of is older than BRIEFING_STALE_AFTER
    is_empty: bool
    at_a_glance: list[GlanceItem]
    sections: list[Section]
    watch_next: list[DevelopmentView]
    sources: list[SourceView]
    news: list[NewsView] = []


def webhook_schema() -> dict[str, object]:
    """JSON Schema of the generic webhook body: the Digest plus its three renders."""
    digest = Digest.model_json_schema(ref_template="#/$defs/{model}")
    defs = digest.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Briefing digest webhook",
        "type": "object",
        "required": ["type", "schema_version", "digest", "text", "markdown", "html"],
        "properties": {
            "type": {"const": "briefing.digest"},
            "schema_version": {"const": SCHEMA_VERSION},
            "digest": {"$ref": "#/$defs/Digest"},
            "text": {"type": "string"},
            "markdown": {"type": "string"},
            "html": {"type": "string"},
        },
        "$defs": {**defs, "Digest": digest},
    }
