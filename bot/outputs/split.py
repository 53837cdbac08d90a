"""Split long text and pack pieces into messages that keep to a platform's limits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
SEPARATORS = ("\n\n", "\n", " ")


def split_text(text: str, limit: int, separators: Sequence[str] = SEPARATORS) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters.

    Cuts at paragraph boundaries first, then lines, then spaces, so a word or a link is
    never cut; only a single word longer than ``limit`` is cut, as a last resort. The
    separators at a cut are left out, and so is a piece that would be blank (runs of
    separators at a cut): chat platforms refuse an empty message or section.
    """
    if len(text) <= limit:
        return [text]
    return [piece for piece in _split(text, limit, separators) if piece.strip()] or [""]


def _split(text: str, limit: int, separators: Sequence[str]) -> list[str]:
    if len(text) <= limit:
        return [text]
    if not separators:
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    separator, finer = separators[0], separators[1:]
    pieces = [p for part in text.split(separator) for p in _split(part, limit, finer)]
    joined: list[str] = []
    for piece in pieces:
        if joined and len(joined[-1]) + len(separator) + len(piece) <= limit:
            joined[-1] += separator + piece
        else:
            joined.append(piece)
    return joined


def pack(items: Sequence[Item], fits: Callable[[list[Item]], bool]) -> list[list[Item]]:
    """Group ``items`` in order into as few groups as ``fits`` allows (greedy).

    An item that does not fit even alone gets a group of its own.
    """
    groups: list[list[Item]] = []
    for item in items:
        if groups and fits([*groups[-1], item]):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
