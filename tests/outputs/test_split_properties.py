"""Splitting long text into message parts: what a reader of the parts would notice.

The parts are the text's own slices, in order, each within the limit; only separators
(spaces, line and paragraph breaks) are left out, at the cuts; a paragraph break is
preferred over a line break over a space; and a word is cut only when it is longer than
the limit by itself.
"""

from __future__ import annotations

import itertools
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.outputs.split import pack, split_text

BLANKS = " \n"

words = st.one_of(
    st.text(alphabet="abcdeéz019", min_size=1, max_size=12),
    st.builds(lambda path: f"https://example.org/{path}", st.text("abc/-_?=", max_size=30)),
)
separators = st.sampled_from([" ", " ", " ", "\n", "\n\n", "  ", "\n\n\n", " \n"])
texts = st.one_of(
    st.lists(st.tuples(words, separators), max_size=40).map(
        lambda pairs: "".join(w + s for w, s in pairs).rstrip(BLANKS)
    ),
    st.text(alphabet="ab \n", max_size=60),
)
limits = st.integers(min_value=1, max_value=40)


def locate(text: str, parts: list[str], blanks: str = BLANKS) -> list[tuple[int, int]]:
    """Where each part lies in ``text``: fails unless the parts are its slices, in order,
    with nothing but ``blanks`` between and around them."""
    spans = []
    position = 0
    for part in parts:
        found = re.compile(f"[{re.escape(blanks)}]*" + re.escape(part)).match(text, position)
        assert found is not None, f"part {part!r} is not the text that follows"
        spans.append((found.end() - len(part), found.end()))
        position = found.end()
    assert text[position:].strip(blanks) == "", "the end of the text was lost"
    return spans


def segment(text: str, start: int, end: int, separator: str) -> str:
    """The piece of ``text`` (cut at every ``separator`` match, as ``str.split`` does)
    that holds ``text[start:end]``."""
    bounds = [0]
    for found in re.finditer(separator, text):
        bounds += [found.start(), found.end()]
    bounds.append(len(text))
    for piece_start, piece_end in zip(bounds[::2], bounds[1::2], strict=True):
        if piece_start <= start and end <= piece_end:
            return text[piece_start:piece_end]
    raise AssertionError(f"{text[start:end]!r} straddles a {separator!r}")


def blank_run(text: str, start: int, end: int) -> tuple[int, int]:
    """The longest run of blanks around ``text[start:end]``."""
    while start > 0 and text[start - 1] in BLANKS:
        start -= 1
    while end < len(text) and text[end] in BLANKS:
        end += 1
    return start, end


def check_split(text: str, limit: int) -> list[str]:
    """Every promise ``split_text`` makes, checked on one text; returns the parts."""
    parts = split_text(text, limit)
    assert parts, "no part at all"
    assert all(len(part) <= limit for part in parts), "a part is over the limit"
    if len(text) <= limit:
        assert parts == [text]
        return parts
    spans = locate(text, parts)
    if text.strip():
        assert all(part.strip() for part in parts), "a blank part (an empty message)"
    else:
        assert parts == [""]
    for (start, end), (next_start, next_end) in itertools.pairwise(spans):
        # as few parts as the greedy rule gives: two neighbours never fit in one
        assert next_end - start > limit, f"{parts} could be fewer"
        run_start, run_end = blank_run(text, end, next_start)
        cut = text[run_start:run_end]
        if "\n\n" in cut:
            continue  # a paragraph break: the preferred cut
        if "\n" in cut:
            paragraph = segment(text, run_start, run_end, "\n\n")
            assert len(paragraph) > limit, f"line cut in a paragraph that fits: {paragraph!r}"
        elif cut:
            line = segment(text, run_start, run_end, "\n")
            assert len(line) > limit, f"word cut in a line that fits: {line!r}"
        else:
            word = segment(text, end, end, "[ \n]")
            assert len(word) > limit, f"the word {word!r} was cut though it fits"
            assert end - start == limit, "a long word is cut at the limit"
    return parts


@settings(max_examples=400, deadline=None)
@given(texts, limits)
@example("word  word", 4)
@example("a\n\n\nb", 1)
@example("aaaa\n\n \n\nbbbb", 4)
@example(" " * 12, 5)
@example(" \n ", 3)
def test_parts_are_the_text_cut_at_the_best_places(text: str, limit: int) -> None:
    check_split(text, limit)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab \n", max_size=50), limits)
def test_spaces_only_when_asked(text: str, limit: int) -> None:
    """A title is shortened at spaces only: its line breaks are ordinary characters."""
    parts = split_text(text, limit, (" ",))
    assert all(len(part) <= limit for part in parts)
    if len(text) > limit:
        spans = locate(text, parts)
        for (start, end), (next_start, next_end) in itertools.pairwise(spans):
            assert next_end - start > limit
            if "\n" not in text[end:next_start] and text[end - 1] != " " != text[end]:
                assert len(segment(text, end, end, " ")) > limit
                assert end - start == limit


def test_text_at_the_limit_is_one_part_and_one_more_character_is_two() -> None:
    assert split_text("ab cd", 5) == ["ab cd"]
    assert split_text("ab cde", 5) == ["ab", "cde"]
    assert split_text("", 5) == [""]


def test_parts_are_filled_greedily() -> None:
    assert split_text("a b c d e f g", 5) == ["a b c", "d e f", "g"]
    assert split_text("aa bb\ncc dd", 5) == ["aa bb", "cc dd"]


def test_a_link_longer_than_the_limit_is_cut_hard_and_nothing_else_is() -> None:
    link = "https://example.org/" + "x" * 49  # 69 characters
    parts = split_text(f"see {link} now", 20)
    assert parts == ["see", link[:20], link[20:40], link[40:60], link[60:] + " now"]
    assert all(len(part) <= 20 for part in parts)


def test_a_word_alone_longer_than_the_limit() -> None:
    assert split_text("abcdefghij", 3) == ["abc", "def", "ghi", "j"]
    assert check_split("abcdefghij", 3)


def test_a_paragraph_longer_than_the_limit_is_cut_at_its_lines() -> None:
    lines = [f"line {n} of a long paragraph" for n in range(6)]  # 26 characters each
    text = "Intro.\n\n" + "\n".join(lines) + "\n\nOutro."  # a paragraph of 161
    assert split_text(text, 60) == [
        "Intro.",
        "\n".join(lines[0:2]),
        "\n".join(lines[2:4]),
        "\n".join(lines[4:6]),
        "Outro.",
    ]
    assert split_text(text, 160) == [
        "Intro.\n\n" + "\n".join(lines[:5]),
        lines[5] + "\n\nOutro.",
    ]
    # with room for the whole paragraph, it is kept whole
    assert split_text(text, 161) == ["Intro.", "\n".join(lines), "Outro."]
    assert split_text(text, 170) == ["Intro.\n\n" + "\n".join(lines), "Outro."]


def test_paragraph_breaks_are_preferred_over_lines_over_spaces() -> None:
    text = "aaa bbb\nccc ddd\n\neee fff"
    assert split_text(text, 15) == ["aaa bbb\nccc ddd", "eee fff"]
    assert split_text(text, 10) == ["aaa bbb", "ccc ddd", "eee fff"]
    assert split_text(text, 6) == ["aaa", "bbb", "ccc", "ddd", "eee", "fff"]


def test_blank_stretches_never_make_an_empty_part() -> None:
    """Chat platforms refuse an empty message or section: runs of blanks at a cut go."""
    assert split_text("word  word", 4) == ["word", "word"]
    assert split_text("aaaa\n\n\n\n\n\nbbbb", 4) == ["aaaa", "bbbb"]
    assert split_text(" " * 12, 5) == [""]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=12), max_size=30), st.integers(1, 20))
def test_pack_keeps_order_and_fills_each_group(sizes: list[int], room: int) -> None:
    def fits(group: list[int]) -> bool:
        return sum(group) <= room

    groups = pack(sizes, fits)
    assert [item for group in groups for item in group] == sizes
    assert all(group for group in groups)
    # a group holds more than one item only if they fit; an item too big stands alone
    assert all(fits(group) or len(group) == 1 for group in groups)
    # as few groups as the greedy rule gives: the next item never fitted in the last group
    assert all(not fits([*group, after[0]]) for group, after in itertools.pairwise(groups))


def test_pack_by_count() -> None:
    assert pack(list("abcde"), lambda g: len(g) <= 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert pack([], lambda g: True) == []
    assert pack([9, 1, 1], lambda g: sum(g) <= 5) == [[9], [1, 1]]
