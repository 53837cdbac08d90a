"""Locale-aware formatting of dates, times, figures and labels (Babel), used by templates."""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time, get_timezone_location
from babel.numbers import format_decimal
from babel.units import format_unit

from bot.digest.model import FigureView, SourceView, WhenView

BABEL_LOCALES = {"en": "en_GB", "fr": "fr_FR"}

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "at_a_glance": "At a glance",
        "new": "What's new",
        "contested": "Contested claims",
        "figures": "Key figures",
        "watch_next": "What to watch next",
        "sources": "Sources",
        "status": "Where it stands",
        "according_to": "According to",
        "source": "Source",
        "no_news": "No new developments since {since}.",
        "standing_situation": "The standing situation:",
        "undated": "date not given",
        "window": "New since {since}",
        "confirmed": "confirmed",
        "claimed": "claimed",
        "contested_standing": "contested",
        "expected": "expected",
        "nothing_new_topic": "Nothing new.",
        "published": "published {date}",
        "time_in": "{city} time",
        "approximately": "about {value}",
        "footer": "Every item is attributed to its source. Claims are marked as such.",
        "colon": ":",
        "semicolon": ";",
        "as_of": "Situation as of {moment}.",
        "nothing_recorded": "Nothing recorded yet as of {moment}.",
        "stale": (
            "Notice: this briefing has not been updated since {moment}; "
            "it may not reflect the latest events."
        ),
        "status_dated": "Where it stands ({date})",
        "status_changed": "Where it stands (updated {date})",
        "no_status": "No status recorded yet.",
        "changes": "Changes",
        "change_standing": "Standing changed",
        "change_corrected": "Correction",
        "change_updated": "Update",
        "change_retracted": "Retracted",
        "reason": "Reason",
        "estimate_by": "estimate by {who}",
        "source_untitled": "{language}-language {kind} of {date}",
        "publisher_unnamed": "publisher not named",
        "in_language": "in {language}",
    },
    "fr": {
        "at_a_glance": "En bref",
        "new": "Nouveautés",
        "contested": "Affirmations contestées",
        "figures": "Chiffres clés",
        "watch_next": "À suivre",
        "sources": "Sources",
        "status": "Où en est-on",
        "according_to": "Selon",
        "source": "Source",
        "no_news": "Aucun nouveau développement depuis le {since}.",
        "standing_situation": "La situation actuelle :",
        "undated": "date non précisée",
        "window": "Nouveau depuis le {since}",
        "confirmed": "confirmé",
        "claimed": "affirmé",
        "contested_standing": "contesté",
        "expected": "attendu",
        "nothing_new_topic": "Rien de nouveau.",
        "published": "publié le {date}",
        "time_in": "heure de {city}",
        "approximately": "environ {value}",
        "footer": (
            "Chaque élément est attribué à sa source. Les affirmations sont signalées comme telles."
        ),
        "colon": "\u202f:",
        "semicolon": "\u202f;",
        "as_of": "Situation au {moment}.",
        "nothing_recorded": "Rien n'est encore enregistré au {moment}.",
        "stale": (
            "Avertissement : ce bulletin n'a pas été mis à jour depuis le {moment} ; "
            "il peut ne pas refléter les derniers événements."
        ),
        "status_dated": "Où en est-on ({date})",
        "status_changed": "Où en est-on (mis à jour le {date})",
        "no_status": "Aucun point de situation enregistré.",
        "changes": "Changements",
        "change_standing": "Changement de statut",
        "change_corrected": "Correction",
        "change_updated": "Mise à jour",
        "change_retracted": "Retiré",
        "reason": "Motif",
        "estimate_by": "estimation avancée par {who}",
        "source_untitled": "{kind} en {language} du {date}",
        "publisher_unnamed": "éditeur non nommé",
        "in_language": "en {language}",
    },
}

# The "In the news" block: reports taken from news feeds, in their own language.
LABELS["en"] |= {
    "in_the_news": "In the news",
    "reported": "reported",
    "lang_en": "in English",
    "lang_fr": "in French",
}
LABELS["fr"] |= {"in_the_news": "Dans la presse", "reported": "rapporté",
                 "lang_en": "en anglais", "lang_fr": "en français"}  # fmt: skip

_MONTH_PARTS = {
    "en": {"early": "early {month}", "mid": "mid-{month}", "late": "late {month}"},
    "fr": {"early": "début {month}", "mid": "mi-{month}", "late": "fin {month}"},
}
_DAY_QUALIFIERS = {
    "en": {"by": "by {day}", "after": "after {day}", "before": "before {day}"},
    "fr": {"by": "au plus tard le {day}", "after": "après le {day}", "before": "avant le {day}"},
}
_TIME_QUALIFIERS = {
    "en": {"after": "after {time}", "before": "before {time}", "around": "around {time}"},
    "fr": {"after": "après {time}", "before": "avant {time}", "around": "vers {time}"},
}


def label(key: str, locale: str, **values: str) -> str:
    """The reader-facing label ``key`` in ``locale``, with ``values`` filled in."""
    return LABELS[locale][key].format(**values)


def standing_label(standing: str, locale: str) -> str:
    return label("contested_standing" if standing == "contested" else standing, locale)


def long_date(value: date | datetime, locale: str) -> str:
    """``2 December 2025`` / ``2 décembre 2025`` (``1er décembre`` in French)."""
    pattern = "d'er' MMMM y" if locale == "fr" and value.day == 1 else "d MMMM y"
    return format_date(value, pattern, locale=BABEL_LOCALES[locale])


def full_date(value: date | datetime, locale: str) -> str:
    """``Tuesday 2 December 2025`` / ``mardi 2 décembre 2025``."""
    pattern = "EEEE d'er' MMMM y" if locale == "fr" and value.day == 1 else "EEEE d MMMM y"
    return format_date(value, pattern, locale=BABEL_LOCALES[locale])


def short_time(value: datetime, locale: str) -> str:
    """``17:00`` in English; ``17 h``, ``17 h 30`` in French (a no-break space before h)."""
    if locale == "fr":
        return f"{value.hour}\u00a0h" + (f"\u00a0{value.minute:02d}" if value.minute else "")
    return format_time(value, "HH:mm", locale=BABEL_LOCALES[locale])


def zone_label(zone: str, locale: str) -> str:
    """``Moscow time`` / ``heure de Moscou``; ``UTC`` for UTC."""
    if zone in ("UTC", "Etc/UTC", "GMT"):
        return "UTC"
    city = get_timezone_location(zone, locale=BABEL_LOCALES[locale], return_city=True)
    return label("time_in", locale, city=city)


def moment(value: datetime, locale: str, zone: str) -> str:
    """A point in time in the reader's zone: ``2 December 2025, 08:00 (Paris time)``."""
    local = value.astimezone(ZoneInfo(zone))
    return f"{long_date(local, locale)}, {short_time(local, locale)} ({zone_label(zone, locale)})"


def day_in(value: datetime, locale: str, zone: str) -> str:
    """The day of ``value`` in the reader's zone: ``2 December 2025``."""
    return long_date(value.astimezone(ZoneInfo(zone)), locale)


@cache
def language_name(code: str, locale: str) -> str:
    """``French`` / ``français``."""
    names = Locale.parse(BABEL_LOCALES[locale]).languages
    return str(names.get(code, code))


def source_text(source: SourceView, locale: str) -> str:
    """A source as what it is: its title and publisher when it has them, else its kind,
    language and date (``French-language news report of 2 December 2025, publisher not
    named``)."""
    published = long_date(source.published, locale)
    if source.title:
        text = source.title + (f", {source.publisher}" if source.publisher else "")
        text += ", " + label("published", locale, date=published)
        if source.language != locale:
            text += f" ({label('in_language', locale, language=language_name(source.language, locale))})"
        return text
    text = short_source(source, locale)
    publisher = source.publisher or label("publisher_unnamed", locale)
    return f"{text}, {publisher}"


def short_source(source: SourceView, locale: str) -> str:
    """How an item cites its source: the title, or ``French-language news report of
    2 December 2025``."""
    if source.title:
        return source.title
    text = label(
        "source_untitled",
        locale,
        language=language_name(source.language, locale),
        kind=source.kind or "",
        date=long_date(source.published, locale),
    )
    return text[:1].upper() + text[1:]


_FR_PUNCTUATION = re.compile(
    r"(&#?\w+;)"  # an HTML entity, left as it is
    r"|(?<=[^\s\u202f])[ \u00a0]?([;:!?])(?=\s|$|[*_)\]»<])"
    r"|«[ \u00a0]?(?!\u202f)"
    r"|(?<![\s\u202f])[ \u00a0]?»"
    r"|\b(\d{1,2}) ?h(?: ?(\d\d))?\b"
)


def french_typography(text: str) -> str:
    """French spacing: a narrow no-break space (U+202F) before ``; : ! ?`` and inside
    « », and hours written ``17 h`` / ``17 h 30`` with no-break spaces. Idempotent;
    URLs, times such as ``17:00`` and HTML entities are left alone."""

    def fix(match: re.Match[str]) -> str:
        if match[1]:
            return match[1]
        if match[2]:
            return "\u202f" + match[2]
        if match[3]:
            return f"{match[3]}\u00a0h" + (f"\u00a0{match[4]}" if match[4] else "")
        return "«\u202f" if match[0].startswith("«") else "\u202f»"

    return _FR_PUNCTUATION.sub(fix, text)


def when_text(when: WhenView | None, locale: str, reader_zone: str) -> str:
    """When something happened or is expected, with exactly the precision the state has.

    A time is shown in the reader's zone first, then in its own zone if that differs.
    """
    if when is None:
        return label("undated", locale)
    if when.precision == "month":
        month = format_skeleton(
            "yMMMM", datetime.fromisoformat(when.at + "-01"), locale=BABEL_LOCALES[locale]
        )
        return _MONTH_PARTS[locale][when.qualifier].format(month=month) if when.qualifier else month
    if when.precision == "day":
        day = long_date(date.fromisoformat(when.at), locale)
        return _DAY_QUALIFIERS[locale][when.qualifier].format(day=day) if when.qualifier else day
    original = datetime.fromisoformat(when.at)
    reader_time = when.reader_time or original
    time = f"{short_time(reader_time, locale)} {zone_label(reader_zone, locale)}"
    if when.timezone and when.timezone != reader_zone:
        time += f" ({short_time(original, locale)} {zone_label(when.timezone, locale)})"
    if when.qualifier:
        time = _TIME_QUALIFIERS[locale][when.qualifier].format(time=time)
    return f"{time}, {full_date(reader_time, locale)}"


def figure_label(figure: FigureView, locale: str, reader_zone: str) -> str:
    """The figure's label with the period it describes: ``Russian territorial gains,
    November 2025``."""
    if figure.period is None:
        return figure.label
    return f"{figure.label}, {when_text(figure.period, locale, reader_zone)}"


def figure_text(figure: FigureView, locale: str) -> str:
    """``about 701 km²`` / ``environ 701 km²``, and whose estimate it is when it is one
    (``about 701 km² (estimate by unnamed specialised institutes)``)."""
    text = _figure_value(figure, locale)
    if figure.estimate:
        who = ", ".join(a.name for a in figure.estimated_by)
        text += f" ({label('estimate_by', locale, who=who)})" if who else ""
    return text


def _figure_value(figure: FigureView, locale: str) -> str:
    babel_locale = BABEL_LOCALES[locale]
    value = int(figure.value) if figure.value.is_integer() else figure.value
    if figure.unit:
        text = format_unit(value, figure.unit, length="short", locale=babel_locale)
    else:
        text = format_decimal(value, locale=babel_locale)
    return label("approximately", locale, value=text) if figure.approximate else text
