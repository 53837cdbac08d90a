"""What makes two feed entries the same story: the same GUID, the same link once tracking
parameters are removed, or a near-identical title from another feed within 48 hours."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.feeds.topics import normalise

TITLE_WINDOW = timedelta(hours=48)
TITLE_SIMILARITY = 90.0  # rapidfuzz ratio, 0..100
_TRACKING = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_ga",
     "ref", "ref_src", "cmpid", "xtor", "at_medium", "at_campaign"}
)  # fmt: skip


def canonical_link(url: str) -> str:
    """``url`` without tracking parameters (``utm_*``, ``fbclid``…) or fragment, its scheme
    and host in lower case and the remaining parameters sorted."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in _TRACKING
    )
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query), ""))


def key(text: str | None) -> str | None:
    """A fixed-length key for a GUID or a canonical link (what the database indexes)."""
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def same_title(a: str, b: str) -> bool:
    """Whether two titles are near-identical (accents, case and punctuation aside)."""
    left, right = normalise(a), normalise(b)
    if not left or not right:
        return False
    from rapidfuzz import fuzz  # only when titles are compared (an import of 60 ms)

    return fuzz.ratio(left, right, processor=_words) >= TITLE_SIMILARITY


def _words(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())
