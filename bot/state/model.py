"""The domain model of the story: topics, actors, sources and sourced developments.

Everything a reader sees is a ``Text`` in both French and English; every development
says when it happened (with the precision the source gives, and no more), who reported
or claimed it, its standing, and where it comes from.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time
from enum import StrEnum
from functools import partial
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.units import UnknownUnitError, get_unit_name
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

LOCALES: tuple[str, ...] = ("en", "fr")
Locale = Literal["en", "fr"]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
LINE_LIMIT = 200
TEXT_LIMIT = 4000
URL_LIMIT = 2000
_CONTROL_NAMES = {
    "\t": "tab",
    "\n": "line feed",
    "\v": "vertical tab",
    "\f": "form feed",
    "\r": "carriage return",
    "\x00": "NUL",
    "\x7f": "delete",
    "\x85": "next line",
    "\u2028": "line separator",
    "\u2029": "paragraph separator",
}


def _is_control(char: str) -> bool:
    """C0 and C1 controls, DEL, and the Unicode line and paragraph separators."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def _describe_char(char: str) -> str:
    name = _CONTROL_NAMES.get(char, "control character")
    return f"U+{ord(char):04X} ({name})"


def check_line(value: str, *, limit: int = LINE_LIMIT) -> str:
    """Refuse a one-line text (title, name, label) with a control character or over ``limit``.

    A line break there would end up in an email subject or a chat title; raises ``ValueError``.
    """
    for index, char in enumerate(value, start=1):
        if _is_control(char):
            raise ValueError(
                f"{_describe_char(char)} at character {index}: this text is shown on one line "
                "and may not hold line breaks or control characters"
            )
    return _check_length(value, limit)


def check_paragraphs(value: str, *, limit: int = TEXT_LIMIT) -> str:
    """Refuse a multi-line text (summary, status) with a control character other than a
    plain line break (LF), or over ``limit``; raises ``ValueError``."""
    for index, char in enumerate(value, start=1):
        if char != "\n" and _is_control(char):
            hint = (
                "use spaces instead of tabs"
                if char == "\t"
                else "only plain line breaks (LF) may separate lines"
            )
            raise ValueError(f"{_describe_char(char)} at character {index}: {hint}")
    return _check_length(value, limit)


def _check_length(value: str, limit: int) -> str:
    if len(value) > limit:
        raise ValueError(f"too long: {len(value)} characters (at most {limit})")
    return value


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
OneLine = Annotated[NonEmpty, AfterValidator(check_line)]
Paragraphs = Annotated[NonEmpty, AfterValidator(check_paragraphs)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    """A piece of reader-facing text in every supported language; it may span lines
    (a summary, a status, a position), up to ``TEXT_LIMIT`` characters."""

    fr: Paragraphs
    en: Paragraphs

    def get(self, locale: str) -> str:
        return self.fr if locale == "fr" else self.en


class Line(Text):
    """Reader-facing text shown on one line (a title, a name, a label): no line breaks or
    control characters, up to ``LINE_LIMIT`` characters."""

    fr: OneLine
    en: OneLine


class Standing(StrEnum):
    CONFIRMED = "confirmed"
    CLAIMED = "claimed"
    CONTESTED = "contested"
    EXPECTED = "expected"


Qualifier = Literal["early", "mid", "late", "by", "after", "before", "around"]
_QUALIFIERS_BY_PRECISION: dict[str, set[str]] = {
    "month": {"early", "mid", "late"},
    "day": {"by", "after", "before"},
    "time": {"after", "before", "around"},
}
_AT = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}))?)?$")


def check_timezone(name: str) -> ZoneInfo:
    """Return the IANA zone called ``name``; raise ``ValueError`` naming it if unknown."""
    if name not in available_timezones():
        raise ValueError(f"unknown timezone {name!r} (expected an IANA name like Europe/Paris)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


class When(_Model):
    """When something happened or is expected, with no more precision than the source gives.

    ``at`` is a month (``2025-10``), a day (``2025-12-02``) or a local time
    (``2025-12-02T17:00``, which needs ``timezone``). ``qualifier`` narrows it:
    early/mid/late for a month, by/after/before for a day, after/before/around for a time.
    """

    at: str
    qualifier: Qualifier | None = None
    timezone: str | None = None

    @field_validator("at")
    @classmethod
    def _parse_at(cls, value: str) -> str:
        match = _AT.fullmatch(value)
        if not match:
            raise ValueError(
                f"{value!r} is not a month (YYYY-MM), a day (YYYY-MM-DD) "
                "or a local time (YYYY-MM-DDTHH:MM)"
            )
        year, month, day, hour, minute = match.groups()
        try:
            date(int(year), int(month), int(day or 1))
            if hour is not None:
                time(int(hour), int(minute))
        except ValueError as exc:
            raise ValueError(f"impossible date {value!r}: {exc}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            check_timezone(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> When:
        if self.precision == "time" and self.timezone is None:
            raise ValueError(f"a time ({self.at}) needs a timezone, e.g. Europe/Moscow")
        if self.precision != "time" and self.timezone is not None:
            raise ValueError("a timezone only makes sense with a time (YYYY-MM-DDTHH:MM)")
        allowed = _QUALIFIERS_BY_PRECISION[self.precision]
        if self.qualifier is not None and self.qualifier not in allowed:
            raise ValueError(
                f"qualifier {self.qualifier!r} does not fit a {self.precision}; "
                f"use one of {', '.join(sorted(allowed))}"
            )
        return self

    @property
    def precision(self) -> Literal["month", "day", "time"]:
        if "T" in self.at:
            return "time"
        return "day" if self.at.count("-") == 2 else "month"

    def local(self) -> datetime:
        """The earliest moment ``at`` designates, as an aware datetime in its own zone.

        Months and days without a zone are taken as UTC.
        """
        zone = ZoneInfo(self.timezone) if self.timezone else UTC
        if self.precision == "time":
            return datetime.fromisoformat(self.at).replace(tzinfo=zone)
        if self.precision == "day":
            return datetime.fromisoformat(self.at + "T00:00").replace(tzinfo=zone)
        return datetime.fromisoformat(self.at + "-01T00:00").replace(tzinfo=zone)


class Actor(_Model):
    """A person, an organisation or a group who acts in, reports or claims something."""

    id: Slug
    kind: Literal["person", "organisation", "group"]
    name: Line
    role: Line | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None


class Source(_Model):
    """Where facts come from: a report, a statement, a publication.

    ``title`` and ``publisher`` only when the source has them: a report with neither is
    described by its ``kind`` ("news report"), language and date, never by a made-up title.
    """

    id: Slug
    kind: Line | None = None
    title: Line | None = None
    publisher: Line | None = None
    published: date
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
    url: (
        Annotated[
            str,
            StringConstraints(pattern=r"^https?://\S+$"),
            AfterValidator(partial(check_line, limit=URL_LIMIT)),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _described(self) -> Source:
        if self.title is None and self.kind is None:
            raise ValueError(
                "a source needs a title or a kind (e.g. {en: news report, fr: dépêche})"
            )
        return self


class Side(_Model):
    """One side of a contested development: who holds which position."""

    actor: Slug
    position: Text


class Figure(_Model):
    """A key figure with a CLDR unit (``area-square-kilometer``, ``length-kilometer``…)."""

    label: Line
    value: Annotated[float, Field(allow_inf_nan=False)]
    unit: str | None = None
    approximate: bool = False
    estimate: bool = False  # an estimate by those who report the development
    when: When | None = None  # the period it describes (default: the development's)

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str | None) -> str | None:
        try:
            known = value is None or get_unit_name(value, locale="en") is not None
        except UnknownUnitError:
            known = False
        if not known:
            raise ValueError(
                f"unknown unit {value!r} (use a CLDR unit id such as length-kilometer)"
            )
        return value


class Development(_Model):
    """One sourced fact, claim or expected event of the story."""

    id: Slug
    topic: Slug
    when: When | None = None
    recorded: datetime
    title: Line
    summary: Text
    reported_by: list[Slug] = Field(default_factory=list)
    standing: Standing
    sides: list[Side] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)
    importance: Annotated[int, Field(ge=1, le=5)] = 3
    sources: Annotated[list[Slug], Field(min_length=1)]

    @field_validator("recorded")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("recorded needs a UTC offset, e.g. 2025-12-02T12:00:00Z")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _standing_rules(self) -> Development:
        if self.standing is Standing.CONTESTED:
            actors = {side.actor for side in self.sides}
            if len(actors) < 2:
                raise ValueError(
                    "a contested development needs at least two sides held by different actors"
                )
        elif self.sides:
            raise ValueError(f"sides are only for contested developments, not {self.standing}")
        if self.when is None and self.standing is not Standing.EXPECTED:
            raise ValueError("only an expected development may leave out 'when'")
        return self


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time needs a UTC offset, e.g. 2025-12-02T12:00:00Z")
    return value.astimezone(UTC)


Moment = Annotated[datetime, AfterValidator(_aware_utc)]


class Topic(_Model):
    """A strand of the story, with its current one-line status and when that was recorded
    (a status without ``recorded`` stands from the start)."""

    id: Slug
    name: Line
    status: Text
    recorded: Moment | None = None


class Story(_Model):
    """The story as a whole."""

    title: Line


class StateFile(_Model):
    """What one YAML file under ``config/state/`` may hold; files are merged."""

    story: Story | None = None
    topics: list[Topic] = Field(default_factory=list)
    actors: list[Actor] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    developments: list[Development] = Field(default_factory=list)
    changes: list[Change] = Field(default_factory=list)


class Additions(_Model):
    """New developments, with the actors and sources they need (``state add``)."""

    actors: list[Actor] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    developments: list[Development] = Field(default_factory=list)


class Update(_Model):
    """What an editor changed in a development: only the fields given."""

    id: Slug
    standing: Standing | None = None
    title: Line | None = None
    summary: Text | None = None
    reported_by: list[Slug] | None = None
    sides: list[Side] | None = None
    add_sources: list[Slug] = Field(default_factory=list)


class StatusChange(_Model):
    """A topic's new status line."""

    topic: Slug
    text: Text


class Retraction(_Model):
    """A development withdrawn from the briefing (kept in its history)."""

    id: Slug


CHANGE_KINDS = ("add", "update", "status", "retract")


class Change(_Model):
    """One editor's change, in the state's journal: who, when, why and exactly one of
    ``add``, ``update``, ``status`` or ``retract``."""

    at: Moment
    by: OneLine
    because: Paragraphs
    add: Additions | None = None
    update: Update | None = None
    status: StatusChange | None = None
    retract: Retraction | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Change:
        given = [kind for kind in CHANGE_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"a change holds exactly one of {', '.join(CHANGE_KINDS)}")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in CHANGE_KINDS if getattr(self, kind) is not None)
