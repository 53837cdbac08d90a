"""Locale-aware formatting of dates, times, figures and labels (Babel), used by templates."""

from __future__ import annotations

from datetime import date, datetime

from babel.dates import format_date, format_skeleton, format_time, get_timezone_location
from babel.numbers import format_decimal
from babel.units import format_unit

from bot.digest.model import FigureView, WhenView

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
        "colon": "\u00a0:",
        "semicolon": "\u202f;",
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
    return format_time(value, "HH:mm", locale=BABEL_LOCALES[locale])


def zone_label(zone: str, locale: str) -> str:
    """``Moscow time`` / ``heure de Moscou``; ``UTC`` for UTC."""
    if zone in ("UTC", "Etc/UTC", "GMT"):
        return "UTC"
    city = get_timezone_location(zone, locale=BABEL_LOCALES[locale], return_city=True)
    return label("time_in", locale, city=city)


def moment(value: datetime, locale: str, zone: str) -> str:
    """A point in time in the reader's zone: ``2 December 2025, 08:00 Paris time``."""
    return f"{long_date(value, locale)}, {short_time(value, locale)} {zone_label(zone, locale)}"


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


def figure_text(figure: FigureView, locale: str) -> str:
    """``about 701 km²`` / ``environ 701 km²``."""
    babel_locale = BABEL_LOCALES[locale]
    value = int(figure.value) if figure.value.is_integer() else figure.value
    if figure.unit:
        text = format_unit(value, figure.unit, length="short", locale=babel_locale)
    else:
        text = format_decimal(value, locale=babel_locale)
    return label("approximately", locale, value=text) if figure.approximate else text
