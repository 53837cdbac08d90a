from __future__ import annotations

import os
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
        "figure that is not a number",
        "value: 701",
        "value: .nan",
        "value: .nan",
        "developments.0.figures.0.value: Input should be a finite number",
    ),
    (
        "date with a trailing line break",
        "at: 2025-12-02T17:00",
        'at: "2025-12-02T17:00\\n"',
        "at: ",
        "is not a month (YYYY-MM), a day (YYYY-MM-DD) or a local time",
    ),
    (
        "source address with a control character",
        "    language: fr\n",
        '    language: fr\n    url: "https://example.org/a\\x1bb"\n',
        "url:",
        "sources.0.url: U+001B (control character) at character 22",
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


def in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``briefing ARGS`` in this process, through the script's error handling."""
    from tests.processes import invoke

    code, out, err = invoke(*args, env=dict(os.environ))
    return subprocess.CompletedProcess(["briefing", *args], code, out, err)


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run(  # a real process; the failures below run in this one
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
    bad = in_process("state", "validate", str(broken))
    assert bad.returncode == 2
    lines = bad.stdout.strip().splitlines()
    assert lines == [
        f"{broken}:22: developments.0.when.timezone: unknown timezone 'Nowhere/City' "
        "(expected an IANA name like Europe/Paris)"
    ]
    assert "Traceback" not in bad.stderr
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("story: [unclosed\n", encoding="utf-8")
    bad = in_process("state", "validate", str(garbage))
    assert bad.returncode == 2 and bad.stdout.startswith(f"{garbage}:2: invalid YAML")
    assert "Traceback" not in bad.stderr


# ── What would break sending: control characters, empty files, over-long text ──────────────


def validate(path: Path) -> tuple[int, list[str], str]:
    """``briefing state validate PATH`` in process: exit code, printed problems, stderr."""
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(app, ["state", "validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout.strip().splitlines(), result.stderr


def assert_refused(path: Path, line: int, message: str) -> None:
    code, problems, err = validate(path)
    assert code == 2, problems
    assert problems == [f"{path}:{line}: {message}"], (problems, line)
    assert "Traceback" not in err


# Written as YAML double-quoted escapes: the YAML reader itself refuses most of these raw.
CONTROLS = {
    "NUL": ("\\0", "U+0000 (NUL)"),
    "C0 BEL": ("\\a", "U+0007 (control character)"),
    "tab": ("\\t", "U+0009 (tab)"),
    "LF": ("\\n", "U+000A (line feed)"),
    "VT": ("\\v", "U+000B (vertical tab)"),
    "FF": ("\\f", "U+000C (form feed)"),
    "CR": ("\\r", "U+000D (carriage return)"),
    "ESC": ("\\e", "U+001B (control character)"),
    "DEL": ("\\x7f", "U+007F (delete)"),
    "C1 PAD": ("\\x80", "U+0080 (control character)"),
    "C1 NEL": ("\\x85", "U+0085 (next line)"),
    "C1 CSI": ("\\x9b", "U+009B (control character)"),
    "LS": ("\\u2028", "U+2028 (line separator)"),
    "PS": ("\\u2029", "U+2029 (paragraph separator)"),
}
# (field, old, new with {c} where the character goes, error location); the needle is `new`
# up to the character, which finds the field's line.
ONE_LINE_FIELDS = {
    "story title": (
        "title: {en: Story, fr: Histoire}",
        'title: {en: "Sto{c}ry", fr: Histoire}',
        "story.title.en",
    ),
    "development title": (
        "title: {en: Title, fr: Titre}",
        'title: {en: Title, fr: "Ti{c}tre"}',
        "developments.0.title.fr",
    ),
    "topic name": (
        "name: {en: Talks, fr: Négociations}",
        'name: {en: "Ta{c}lks", fr: Négociations}',
        "topics.0.name.en",
    ),
    "actor name": (
        "name: {en: the Kremlin, fr: le Kremlin}",
        'name: {en: "the{c}Kremlin", fr: le Kremlin}',
        "actors.0.name.en",
    ),
    "source title": (
        "title: {en: A report, fr: Une dépêche}",
        'title: {en: "A{c}report", fr: Une dépêche}',
        "sources.0.title.en",
    ),
    "figure label": (
        "label: {en: Area, fr: Surface}",
        'label: {en: "Ar{c}ea", fr: Surface}',
        "developments.0.figures.0.label.en",
    ),
}
MULTI_LINE_FIELDS = {
    "summary": (
        "summary: {en: Summary., fr: Résumé.}",
        'summary: {en: "Sum{c}mary.", fr: Résumé.}',
        "developments.0.summary.en",
    ),
    "topic status": (
        "status: {en: Ongoing., fr: En cours.}",
        'status: {en: Ongoing., fr: "En{c}cours."}',
        "topics.0.status.fr",
    ),
    "side position": (
        "position: {en: Yes., fr: Oui.}",
        'position: {en: "Y{c}es.", fr: Oui.}',
        "developments.0.sides.0.position.en",
    ),
}
ONE_LINE_MESSAGE = (
    "this text is shown on one line and may not hold line breaks or control characters"
)


def broken_with(tmp_path: Path, old: str, new: str, char: str) -> tuple[Path, int]:
    assert old in VALID, old
    text = VALID.replace(old, new.replace("{c}", char), 1)
    path = tmp_path / "state.yaml"
    path.write_text(text, encoding="utf-8")
    return path, line_of(text, new.split("{c}")[0])


@pytest.mark.parametrize("control", CONTROLS, ids=list(CONTROLS))
def test_control_character_in_a_one_line_field_is_refused(tmp_path: Path, control: str) -> None:
    escape, described = CONTROLS[control]
    old, new, where = ONE_LINE_FIELDS["development title"]
    path, line = broken_with(tmp_path, old, new, escape)
    assert_refused(path, line, f"{where}: {described} at character 3: {ONE_LINE_MESSAGE}")


@pytest.mark.parametrize("field", ONE_LINE_FIELDS, ids=list(ONE_LINE_FIELDS))
def test_every_one_line_field_refuses_line_breaks(tmp_path: Path, field: str) -> None:
    old, new, where = ONE_LINE_FIELDS[field]
    for escape, described in (CONTROLS["LF"], CONTROLS["CR"], CONTROLS["C1 NEL"]):
        path, line = broken_with(tmp_path, old, new, escape)
        position = new.index("{c}") - new.index('"')
        assert_refused(
            path, line, f"{where}: {described} at character {position}: {ONE_LINE_MESSAGE}"
        )


@pytest.mark.parametrize("control", [c for c in CONTROLS if c != "LF"])
def test_control_character_in_a_multi_line_field_is_refused(tmp_path: Path, control: str) -> None:
    escape, described = CONTROLS[control]
    old, new, where = MULTI_LINE_FIELDS["summary"]
    path, line = broken_with(tmp_path, old, new, escape)
    hint = (
        "use spaces instead of tabs"
        if control == "tab"
        else "only plain line breaks (LF) may separate lines"
    )
    assert_refused(path, line, f"{where}: {described} at character 4: {hint}")


@pytest.mark.parametrize("field", MULTI_LINE_FIELDS, ids=list(MULTI_LINE_FIELDS))
def test_multi_line_fields_take_line_breaks_but_no_other_control(
    tmp_path: Path, field: str
) -> None:
    old, new, where = MULTI_LINE_FIELDS[field]
    path, _ = broken_with(tmp_path, old, new, "\\n")
    code, problems, _ = validate(path)
    assert code == 0, problems
    path, line = broken_with(tmp_path, old, new, "\\u2029")
    position = new.index("{c}") - new.index('"')
    assert_refused(
        path,
        line,
        f"{where}: U+2029 (paragraph separator) at character {position}: "
        "only plain line breaks (LF) may separate lines",
    )


def test_a_literal_block_summary_keeps_its_lines(tmp_path: Path) -> None:
    text = VALID.replace(
        "    summary: {en: Summary., fr: Résumé.}\n",
        "    summary:\n      en: |\n        First line.\n        Second line.\n      fr: Résumé.\n",
    )
    path = tmp_path / "state.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_state(path).developments[0].summary.en == "First line.\nSecond line."
    path.write_text(text.replace("Second line.", "Second\tline."), encoding="utf-8")
    assert_refused(
        path,
        line_of(text, "en: |"),
        "developments.0.summary.en: U+0009 (tab) at character 19: use spaces instead of tabs",
    )


@pytest.mark.parametrize(
    "content", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment"]
)
def test_an_empty_state_file_is_reported(tmp_path: Path, content: str) -> None:
    (tmp_path / "state.yaml").write_text(VALID, encoding="utf-8")
    extra = tmp_path / "zz_extra.yaml"
    extra.write_text(content, encoding="utf-8")
    code, problems, err = validate(tmp_path)
    assert code == 2 and problems == [f"{extra}:1: the file is empty"], problems
    assert "Traceback" not in err


def test_a_file_that_defines_nothing_is_reported(tmp_path: Path) -> None:
    (tmp_path / "state.yaml").write_text(VALID, encoding="utf-8")
    extra = tmp_path / "zz_extra.yaml"
    extra.write_text("# nothing yet\ndevelopments: []\n", encoding="utf-8")
    assert_refused(
        extra,
        2,
        "the file defines nothing (no story, topics, actors, sources, developments or changes)",
    )


@pytest.mark.parametrize(
    ("field", "limit"),
    [("development title", 200), ("story title", 200), ("actor name", 200), ("summary", 4000)],
)
def test_over_long_text_is_reported_with_its_length_and_the_limit(
    tmp_path: Path, field: str, limit: int
) -> None:
    old, new, where = {**ONE_LINE_FIELDS, **MULTI_LINE_FIELDS}[field]
    before, after = new.split("{c}")
    body = before.split('"')[-1] + after.split('"')[0]

    def sized(length: int) -> str:
        return "x" * (length - len(body))

    path, _ = broken_with(tmp_path, old, new, sized(limit))
    code, problems, _ = validate(path)
    assert code == 0, problems  # exactly at the limit
    path, line = broken_with(tmp_path, old, new, sized(limit + 1))
    assert_refused(path, line, f"{where}: too long: {limit + 1} characters (at most {limit})")


def test_a_huge_summary_is_refused(tmp_path: Path) -> None:
    old, new, where = MULTI_LINE_FIELDS["summary"]
    path, line = broken_with(tmp_path, old, new, "word " * 22_400)
    size = len("Summary.") + len("word " * 22_400)
    assert_refused(path, line, f"{where}: too long: {size} characters (at most 4000)")


def test_seed_state_validates_through_the_cli() -> None:
    code, problems, _ = validate(SEED_STATE)
    assert code == 0 and "17 developments" in problems[-1], problems
