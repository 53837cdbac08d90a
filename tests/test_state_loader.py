from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import StateError
from bot.state import Standing, load_state
from tests.conftest import SEED_STATE

VALID = """\
story:
  title: {en: Story, fr: Histoire}
topics:
  - id: talks
    name: {en: Talks, fr: Négociations}
    status: {en: Ongoing., fr: En cours.}
actors:
  - id: kremlin
    kind: organisation
    name: {en: the Kremlin, fr: le Kremlin}
  - id: kyiv
    kind: organisation
    name: {en: Kyiv, fr: Kyiv}
sources:
  - id: src
    title: {en: A report, fr: Une dépêche}
    published: 2025-12-02
    language: fr
developments:
  - id: dev-one
    topic: talks
    when: {at: 2025-12-02T17:00, qualifier: after, timezone: Europe/Moscow}
    recorded: 2025-12-02T12:00:00Z
    standing: contested
    title: {en: Title, fr: Titre}
    summary: {en: Summary., fr: Résumé.}
    reported_by: [kremlin]
    sides:
      - actor: kremlin
        position: {en: Yes., fr: Oui.}
      - actor: kyiv
        position: {en: No., fr: Non.}
    figures:
      - label: {en: Area, fr: Surface}
        value: 701
        unit: area-square-kilometer
    sources: [src]
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = text.splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if needle in line]
    return hits[occurrence - 1]


# (name, old, new, needle locating the expected line in the broken text, expected message part)
BROKEN = [
    (
        "unknown topic",
        "    topic: talks",
        "    topic: weather",
        "topic: weather",
        "dev-one: unknown topic 'weather' (known: talks)",
    ),
    (
        "missing translation",
        "summary: {en: Summary., fr: Résumé.}",
        "summary: {fr: Résumé.}",
        "summary: {fr",
        "developments.0.summary.en: missing English translation",
    ),
    (
        "empty translation",
        "title: {en: Title, fr: Titre}",
        "title: {en: Title, fr: ''}",
        "title: {en: Title",
        "developments.0.title.fr",
    ),
    (
        "impossible date",
        "at: 2025-12-02T17:00",
        "at: 2025-02-30T17:00",
        "2025-02-30",
        "impossible date '2025-02-30T17:00'",
    ),
    (
        "impossible month",
        "at: 2025-12-02T17:00, qualifier: after, timezone: Europe/Moscow",
        "at: 2025-13",
        "2025-13",
        "impossible date '2025-13'",
    ),
    (
        "contested with one side",
        "      - actor: kyiv\n        position: {en: No., fr: Non.}\n",
        "",
        "- id: dev-one",
        "a contested development needs at least two sides",
    ),
    (
        "unknown actor",
        "reported_by: [kremlin]",
        "reported_by: [nobody]",
        "reported_by",
        "dev-one: unknown actor 'nobody'",
    ),
    (
        "unknown side actor",
        "      - actor: kyiv",
        "      - actor: lviv",
        "actor: lviv",
        "dev-one: unknown actor 'lviv'",
    ),
    (
        "unknown source",
        "sources: [src]",
        "sources: [elsewhere]",
        "sources: [elsewhere]",
        "dev-one: unknown source 'elsewhere'",
    ),
    (
        "duplicate id",
        "  - id: kyiv",
        "  - id: kremlin",
        "  - id: kremlin",
        "duplicate id 'kremlin' (first at",
    ),
    (
        "time without timezone",
        ", timezone: Europe/Moscow}",
        "}",
        "qualifier: after",
        "needs a timezone",
    ),
    (
        "unknown timezone",
        "Europe/Moscow",
        "Europe/Atlantis",
        "Europe/Atlantis",
        "unknown timezone 'Europe/Atlantis'",
    ),
    (
        "unknown field",
        "    summary:",
        "    sumary:",
        "sumary",
        "developments.0.sumary: unknown field",
    ),
    (
        "unknown unit",
        "unit: area-square-kilometer",
        "unit: furlongs",
        "furlongs",
        "unknown unit 'furlongs'",
    ),
    (
        "qualifier that does not fit",
        "qualifier: after, timezone: Europe/Moscow",
        "qualifier: late, timezone: Europe/Moscow",
        "qualifier: late",
        "qualifier 'late' does not fit a time",
    ),
    (
        "recorded without offset",
        "recorded: 2025-12-02T12:00:00Z",
        "recorded: 2025-12-02T12:00:00",
        "recorded: 2025",
        "recorded needs a UTC offset",
    ),
    (
        "bad standing",
        "standing: contested",
        "standing: rumoured",
        "standing: rumoured",
        "developments.0.standing",
    ),
    (
        "duplicate key",
        "    standing: contested\n",
        "    standing: contested\n    standing: claimed\n",
        "standing: claimed",
        "duplicate key 'standing'",
    ),
    (
        "malformed YAML",
        "    topic: talks\n",
        "    topic: talks\n   bad: [indent\n",
        "bad: [indent",
        "invalid YAML",
    ),
    (
        "missing when on a confirmed fact",
        "    when: {at: 2025-12-02T17:00, qualifier: after, timezone: Europe/Moscow}\n",
        "",
        "- id: dev-one",
        "only an expected development may leave out 'when'",
    ),
]


def test_seed_state_is_valid_and_complete(seed_state) -> None:
    assert list(seed_state.topics) == ["talks", "sanctions", "military", "politics"]
    assert len(seed_state.developments) == 17
    standings = {d.standing for d in seed_state.developments}
    assert standings == set(Standing)
    contested = [d for d in seed_state.developments if d.standing is Standing.CONTESTED]
    assert [d.id for d in contested] == ["pokrovsk-capture-contested"]
    assert {s.actor for s in contested[0].sides} == {"russian-authorities", "ukrainian-authorities"}


def test_valid_minimal_file(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(VALID, encoding="utf-8")
    state = load_state(path)
    assert state.developments[0].when is not None
    assert state.developments[0].when.precision == "time"


@pytest.mark.parametrize(
    ("name", "old", "new", "needle", "message"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_broken_state_reports_file_line_and_reason(
    tmp_path: Path, name: str, old: str, new: str, needle: str, message: str
) -> None:
    assert old in VALID, name
    text = VALID.replace(old, new, 1)
    path = tmp_path / "state.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StateError) as caught:
        load_state(path)
    rendered = [str(p) for p in caught.value.problems]
    expected_line = line_of(text, needle, 2 if name == "duplicate id" else 1)
    matching = [p for p in rendered if message in p]
    assert matching, rendered
    assert any(p.startswith(f"{path}:{expected_line}: ") for p in matching), (
        rendered,
        expected_line,
    )


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = VALID.replace("topic: talks", "topic: weather").replace("sources: [src]", "sources: [x]")
    (tmp_path / "state.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(StateError) as caught:
        load_state(tmp_path)
    messages = " | ".join(str(p) for p in caught.value.problems)
    assert "unknown topic 'weather'" in messages and "unknown source 'x'" in messages


def test_duplicate_id_across_files_names_both_places(state_dir: Path) -> None:
    (state_dir / "more.yaml").write_text(
        "actors:\n  - id: kremlin\n    kind: organisation\n    name: {en: K, fr: K}\n",
        encoding="utf-8",
    )
    with pytest.raises(StateError) as caught:
        load_state(state_dir)
    (problem,) = caught.value.problems
    assert problem.file.endswith("more.yaml") and problem.line == 2
    assert (
        "duplicate id 'kremlin' (first at" in problem.message and "actors.yaml" in problem.message
    )


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "state.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(StateError, match="expected a mapping at the top level"):
        load_state(tmp_path)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no state files"):
        load_state(tmp_path)


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "bot", "state", "validate", str(SEED_STATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "17 developments" in ok.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        VALID.replace("topic: talks", "topic: weather").replace("Europe/Moscow", "Nowhere/City"),
        encoding="utf-8",
    )
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "state", "validate", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    lines = bad.stdout.strip().splitlines()
    assert lines == [
        f"{broken}:22: developments.0.when.timezone: unknown timezone 'Nowhere/City' "
        "(expected an IANA name like Europe/Paris)"
    ]
    assert "Traceback" not in bad.stderr
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("story: [unclosed\n", encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "state", "validate", str(garbage)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and bad.stdout.startswith(f"{garbage}:2: invalid YAML")
    assert "Traceback" not in bad.stderr
