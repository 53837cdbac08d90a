"""Topic rules: which topic an entry belongs to, by keywords and phrases matched on word
boundaries, whatever the case and the accents."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "‘": "'", "`": "'"})


def normalise(text: str) -> str:
    """``text`` folded for matching: accents removed, case folded, apostrophes alike."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class TopicRules:
    """Keywords by topic, compiled once; ``match`` files a text under one topic or none."""

    def __init__(self, words: Mapping[str, Iterable[str]]) -> None:
        self._rules = {
            topic: [_pattern(w) for w in dict.fromkeys(normalise(w) for w in items if w.strip())]
            for topic, items in words.items()
        }

    @property
    def topics(self) -> list[str]:
        return list(self._rules)

    def match(self, text: str, *, allowed: Iterable[str] | None = None) -> str | None:
        """The topic whose keywords ``text`` holds most (the first listed on a tie), among
        ``allowed`` topics if given; None when none matches."""
        folded = normalise(text)
        allowed_set = set(allowed) if allowed is not None else None
        best, best_hits = None, 0
        for topic, patterns in self._rules.items():
            if allowed_set is not None and topic not in allowed_set:
                continue
            hits = sum(1 for p in patterns if p.search(folded))
            if hits > best_hits:
                best, best_hits = topic, hits
        return best


def _pattern(word: str) -> re.Pattern[str]:
    """A keyword or phrase on word boundaries; any white space between a phrase's words."""
    body = r"\s+".join(re.escape(part) for part in word.split())
    return re.compile(rf"(?<!\w){body}(?!\w)")
