"""Live state through the CLI: digests say how current they are; editors change the state
with revisions (add, update, status, retract), and previews and delivered digests report
each change once; history, export, concurrent edits, stale imports and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import SEED_STATE
from tests.processes import bot_env, cli

FORMATS = ["text", "markdown", "html", "json", "slack", "discord", "teams", "mattermost"]
AS_OF = {
    "en": "Situation as of 2 December 2025, 13:00 (Paris time)",
    "fr": "Situation au 2\u00a0décembre 2025, 13\u00a0h (heure de Paris)",
}
STALE = {"en": "has not been updated since", "fr": "n'a pas été mis à jour depuis"}
NEW_DEV = """\
developments:
  - id: kyiv-talks-announced
    topic: talks
    when: {at: 2026-11-30}
    standing: confirmed
    importance: 5
    reported_by: [kremlin]
    title: {en: New round of talks announced, fr: Nouveau cycle de pourparlers annoncé}
    summary:
      en: The Kremlin announced a new round of talks.
      fr: "Le Kremlin a annoncé un nouveau cycle : « bientôt »."
    sources: [report-2025-12-02]
"""


@pytest.fixture
def env(tmp_path):
    return bot_env(tmp_path, BRIEFING_EDITOR="alice")


def plain(text: str) -> str:
    """Rendered text with its no-break spaces as plain ones, and JSON/HTML quotes undone."""
    for space in ("\u00a0", "\u202f"):
        text = text.replace(space, " ")
    return text.replace("&#39;", "'").replace("\u2019", "'")


@pytest.mark.parametrize("locale", ["en", "fr"])
async def test_default_preview_says_how_current_and_that_it_is_stale(env, locale) -> None:
    for fmt in FORMATS:
        code, out, err = await cli(
            "preview", "--locale", locale, "--timezone", "Europe/Paris", "--format", fmt, env=env
        )
        assert code == 0, err
        if fmt == "json":
            data = json.loads(out)
            assert data["stale"] is True and data["as_of"].startswith("2025-12-02T13:00:00+01:00")
            continue
        payloads = fmt not in ("text", "markdown", "html")
        seen = plain(json.dumps(json.loads(out), ensure_ascii=False) if payloads else out)
        assert plain(AS_OF[locale]) in seen, (fmt, seen[:600])
        assert STALE[locale] in seen, (fmt, seen[:600])
        assert "[report-2025-12-02]" not in seen and "report-2025-12-02" not in seen


async def test_a_window_before_anything_was_recorded_shows_no_december_status(env) -> None:
    for locale, december in (("en", "December"), ("fr", "décembre")):
        code, out, err = await cli(
            "preview", "--now", "2025-12-02T08:00Z", "--locale", locale, env=env
        )
        assert code == 0, err
        body = plain(out)
        assert "Moscow" not in body and "Moscou" not in body and "Rosneft" not in body
        assert f"2 {december} 2025 :" not in body and f"2 {december} 2025:" not in body
        assert "Situation a" not in body and "not been updated" not in body
        assert "Nothing recorded yet" in body or "Rien n'est encore enregistré" in body
    code, out, _ = await cli("preview", "--now", "2025-12-02T08:00Z", "--format", "json", env=env)
    data = json.loads(out)
    assert data["as_of"] is None and data["stale"] is False
    assert all(s["status"] is None for s in data["sections"])


async def edit_session(env, tmp_path: Path) -> None:
    new = tmp_path / "new.yaml"
    new.write_text(NEW_DEV, encoding="utf-8")
    steps = [
        ("state", "add", "--file", str(new), "--because", "announced this morning"),
        ("state", "update", "pokrovsk-capture-contested", "--standing", "confirmed",
         "--title-en", "Pokrovsk taken by Russia", "--title-fr", "Pokrovsk prise par la Russie",
         "--because", "Ukraine confirmed the withdrawal"),
        ("state", "retract", "white-house-optimistic", "--because", "misattributed quote"),
        ("state", "status", "military", "--en", "Pokrovsk has fallen.",
         "--fr", "Pokrovsk est tombée ; les combats continuent ailleurs.",
         "--because", "new situation"),
    ]  # fmt: skip
    for step in steps:
        code, out, err = await cli(*step, "--json", env=env)
        assert code == 0, (step, err)


async def test_an_edit_session_shows_each_change_once_in_preview_and_delivery(
    env, tmp_path, receiver
) -> None:
    url = receiver.on("/hook")
    code, _, err = await cli("subscribe", "webhook", url, "--kind", "generic", env=env)
    assert code == 0, err
    await edit_session(env, tmp_path)
    code, out, err = await cli("preview", "--since", "2026-01-01T00:00Z", env=env)
    assert code == 0, err
    assert out.count("New round of talks announced") == 2  # at a glance and in its section
    assert out.count("Pokrovsk taken by Russia") == 2  # at a glance and as a change
    assert "Standing changed: Pokrovsk taken by Russia (contested → confirmed)" in out
    assert out.count("Reason: Ukraine confirmed the withdrawal") == 1
    assert out.count('Retracted: White House says it is "very optimistic"') == 2
    assert out.count("Reason: misattributed quote") == 1
    assert "Where it stands (updated " in out and "Pokrovsk has fallen." in out
    assert "stale" not in out.lower() and "not been updated" not in out
    code, out, err = await cli("preview", "--since", "2026-01-01T00:00Z", "--locale", "fr", env=env)
    assert "Changement de statut\u202f: Pokrovsk prise par la Russie (contesté → confirmé)" in out
    assert "cycle\u202f: «\u202fbientôt\u202f»" in out  # French typography on state text
    assert "Pokrovsk est tombée\u202f; les combats" in out

    code, out, err = await cli("send", "--subscription", "1", env=env)
    assert code == 0, err
    (hit,) = receiver.hits("/hook")
    body = hit.json()
    text = body["text"]
    assert "Standing changed: Pokrovsk taken by Russia (contested → confirmed)" in text
    assert text.count("Reason: misattributed quote") == 1
    assert text.count("Reason: Ukraine confirmed the withdrawal") == 1
    military = next(s for s in body["digest"]["sections"] if s["topic"] == "military")
    assert [c["kind"] for c in military["changes"]] == ["standing"]
    assert military["status_changed"] is True and military["status"] == "Pokrovsk has fallen."
    talks = next(s for s in body["digest"]["sections"] if s["topic"] == "talks")
    assert [d["id"] for d in talks["new"]] == ["kyiv-talks-announced"]
    assert [c["kind"] for c in talks["changes"]] == ["retracted"]
    assert body["digest"]["stale"] is False

    # The next digest's window starts where this one ended: nothing is reported twice.
    code, out, err = await cli("send", "--subscription", "1", env=env)
    assert code == 0, err
    again = receiver.hits("/hook")[-1].json()["text"]
    assert "Reason:" not in again and "New round of talks announced" not in again


async def test_history_and_export_round_trip(env, tmp_path) -> None:
    await edit_session(env, tmp_path)
    code, out, err = await cli("state", "history", "pokrovsk-capture-contested", "--json", env=env)
    assert code == 0, err
    versions = json.loads(out)
    assert [(v["version"], v["kind"], v["standing"], v["by"]) for v in versions] == [
        (1, "recorded", "contested", None),
        (2, "standing", "confirmed", "alice"),
    ]
    code, out, _ = await cli("state", "history", "--json", env=env)
    revisions = json.loads(out)
    assert len(revisions) == 5 and revisions[-1]["summary"] == "status of military"
    assert revisions[2]["because"] == "Ukraine confirmed the withdrawal"
    exported = tmp_path / "exported"
    code, out, err = await cli("state", "export", str(exported), "--json", env=env)
    assert code == 0, err
    revision = json.loads(out)["revision"]
    assert revision == revisions[-1]["revision"]
    code, out, err = await cli("state", "validate", str(exported), env=env)
    assert code == 0 and f"4 changes (revision {revision})" in out, out + err
    code, out, err = await cli("state", "import", str(exported), "--json", env=env)
    assert code == 0, err
    assert json.loads(out) == {
        "revision": revision, "created": False, "path": str(exported), "developments": 17,
    }  # fmt: skip


async def test_a_second_editor_needs_the_expected_revision(env, tmp_path) -> None:
    await edit_session(env, tmp_path)
    args = ("state", "update", "pokrovsk-capture-contested", "--summary-en", "Taken.")
    code, out, err = await cli(*args, "--because", "b", "--by", "bob", env=env)
    assert code == 1 and "last changed by alice" in err and "--expect-revision 2" in err
    code, out, err = await cli(
        *args, "--because", "b", "--by", "bob", "--expect-revision", "1", env=env
    )
    assert code == 1 and "is at revision 2, not 1" in err
    code, out, err = await cli(
        *args, "--because", "b", "--by", "bob", "--expect-revision", "2", "--json", env=env
    )
    assert code == 0, err and json.loads(out)["version"] == 3
    # alice now edits on top of bob's change: refused until she says she saw it
    code, out, err = await cli(*args[:3], "--summary-fr", "Prise.", "--because", "c", env=env)
    assert code == 1 and "last changed by bob" in err
    code, _, err = await cli("state", "status", "military", "--en", "x", "--fr", "y",
                             "--because", "z", "--by", "bob", env=env)  # fmt: skip
    assert code == 1 and "military was last changed by alice" in err


async def test_importing_older_files_is_refused_unless_forced(env, tmp_path) -> None:
    await edit_session(env, tmp_path)
    older = tmp_path / "older"
    shutil.copytree(SEED_STATE, older)
    code, out, err = await cli("state", "import", str(older), env=env)
    assert code == 1 and "would undo" in err
    for change in ("add kyiv-talks-announced", "update pokrovsk-capture-contested",
                   "retract white-house-optimistic", "status of military"):  # fmt: skip
        assert change in err
    code, out, err = await cli("preview", "--format", "json", env=env)
    assert "kyiv-talks-announced" in out  # nothing was undone
    code, out, err = await cli("state", "import", str(older), "--force", env=env)
    assert code == 0 and "imported as a new revision" in out, err
    code, out, err = await cli("preview", "--format", "json", env=env)
    assert "kyiv-talks-announced" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("update", "pokrovsk-capture-contested", "--title-en", "x" * 201), "--title-en: too long: 201"),
        (("update", "pokrovsk-capture-contested", "--title-fr", "a\nb"), "--title-fr: U+000A"),
        (("update", "pokrovsk-capture-contested", "--standing", "maybe"), "--standing: unknown standing 'maybe'"),
        (("update", "yermak-resigns", "--standing", "contested"), "--standing: a contested development needs"),
        (("update", "no-such", "--standing", "claimed"), "--id: no development 'no-such'"),
        (("update", "yermak-resigns", "--add-source", "nowhere"), "--add-source: unknown source 'nowhere'"),
        (("update", "yermak-resigns", "--summary-en", " "), "--summary-en: empty"),
        (("status", "weather", "--en", "x", "--fr", "y"), "--topic: unknown topic 'weather'"),
        (("retract", "yermak-resigns", "--by", "a\x1bb"), "--by: control character U+001B"),
    ],
)  # fmt: skip
async def test_bad_edit_input_names_the_field(env, args, message) -> None:
    code, out, err = await cli("state", *args, "--because", "why", env=env)
    assert code == 2 and message in err and "Traceback" not in err, err
    code, out, _ = await cli("state", "history", "--json", env=env)
    assert len(json.loads(out)) == 1  # nothing stored


async def test_a_bad_file_of_developments_is_reported_at_its_lines(env, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        NEW_DEV.replace("topic: talks", "topic: weather").replace(
            "reported_by: [kremlin]", "reported_by: [kremlin]\n    colour: red"
        ),
        encoding="utf-8",
    )
    code, out, err = await cli("state", "add", "--file", str(bad), "--because", "x", env=env)
    assert code == 2, err
    assert f"{bad}:8: developments.0.colour: unknown field" in err
    bad.write_text(NEW_DEV.replace("kyiv-talks-announced", "yermak-resigns"), encoding="utf-8")
    code, out, err = await cli("state", "add", "--file", str(bad), "--because", "x", env=env)
    assert code == 2 and f"{bad}:2: id 'yermak-resigns' is already in the state" in err
