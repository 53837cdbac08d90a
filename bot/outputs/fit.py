"""Fit chat text into a platform's limits, measured the platform's way.

``split.split_text`` counts characters; platforms count other things: Telegram UTF-16 code
units, Zulip and ntfy UTF-8 bytes, Matrix the bytes of a whole event. Here the measure is a
parameter. Text is cut at paragraph, then line, then word boundaries; chat HTML only at
paragraph and line boundaries (every line of a chat render closes the tags it opens), and
a single line too long for one message loses its markup rather than be cut inside a tag.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from bot.outputs.split import SEPARATORS, pack

Measure = Callable[[str], int]
_TAG = re.compile(r"<[^>]*>")
_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)
_HTML_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def utf8_size(text: str) -> int:
    return len(text.encode())


def utf16_size(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts (a character beyond U+FFFF is two)."""
    return len(text.encode("utf-16-le")) // 2


def fit_text(
    text: str,
    limit: int,
    *,
    measure: Measure = len,
    separators: Sequence[str] = SEPARATORS,
) -> list[str]:
    """Pieces of ``text`` that each measure at most ``limit``, cut at the coarsest boundary
    that fits; only a word too long for a message is cut inside. Blank pieces are left out."""
    pieces = _split(text, limit, measure, separators, lambda piece: _cut(piece, limit, measure))
    return [piece for piece in pieces if piece.strip()] or [text[:0]]


def fit_html(text: str, limit: int, *, measure: Measure = len) -> list[str]:
    """``fit_text`` for chat HTML: cut between paragraphs and lines only; a line longer than
    ``limit`` is sent as escaped plain text (its links written out), cut between words."""

    def plain(line: str) -> list[str]:
        words = html_to_text(line)
        return [
            p.translate(_HTML_TEXT)
            for p in fit_text(words, limit, measure=lambda s: measure(s.translate(_HTML_TEXT)))
        ]

    pieces = _split(text, limit, measure, ("\n\n", "\n"), plain)
    return [piece for piece in pieces if piece.strip()] or [text[:0]]


def html_to_text(text: str) -> str:
    """The plain text of chat HTML made by the bot's renderer: links as ``title (url)``,
    tags dropped, entities read. (State text in it is escaped, so every tag is the bot's.)"""
    text = _LINK.sub(lambda m: f"{m[2]} ({m[1]})", text)
    return html.unescape(_TAG.sub("", text))


def pack_text(
    pieces: Sequence[str], limit: int, *, measure: Measure = len, joiner: str
) -> list[str]:
    """Join ``pieces`` in order into as few messages as fit in ``limit``."""
    groups = pack(list(pieces), lambda group: measure(joiner.join(group)) <= limit)
    return [joiner.join(group) for group in groups]


def _split(
    text: str,
    limit: int,
    measure: Measure,
    separators: Sequence[str],
    last_resort: Callable[[str], list[str]],
) -> list[str]:
    if measure(text) <= limit:
        return [text]
    if not separators:
        return last_resort(text)
    separator, finer = separators[0], separators[1:]
    joined: list[str] = []
    for part in text.split(separator):
        for piece in _split(part, limit, measure, finer, last_resort):
            if joined and measure(joined[-1] + separator + piece) <= limit:
                joined[-1] += separator + piece
            else:
                joined.append(piece)
    return joined


def _cut(text: str, limit: int, measure: Measure) -> list[str]:
    """``text`` cut anywhere into pieces that each measure at most ``limit`` (at least one
    character a piece, whatever it measures)."""
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + max(1, limit))
        while end - start > 1 and (size := measure(text[start:end])) > limit:
            end = start + max(1, min(end - start - 1, (end - start) * limit // size))
        pieces.append(text[start:end])
        start = end
    return pieces
