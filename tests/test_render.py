from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.digest import FORMATS, Digest, DigestRenderer, ReaderOptions, Window, compose
from bot.errors import ConfigError
from bot.state import load_state
from tests.conftest import extra_development, write_developments
from tests.processes import invoke

DAY_OF_REPORT = datetime(2025, 12, 2, 18, 0, tzinfo=UTC)

# Every fact of the seed report, as it must read in each language (names as transliterated there).
FACTS = {
    "en": [
        "Steve Witkoff",
        "Jared Kushner",
        "arrived in Moscow",
        "Vnukovo",
        "Kirill Dmitriev",
        "According to Dmitry Peskov (Kremlin spokesman)",
        "as long as necessary",
        "after 15:00 Paris time (17:00 Moscow time), Tuesday 2 December 2025",
        "According to the Kremlin",
        "Kushner would take part",
        "According to the White House",
        "very optimistic",
        "document of several points",
        "amended after consultations with Ukraine",
        "Emmanuel Macron",
        "Donald Trump",
        "security guarantees",
        "Volodymyr Zelensky",
        "According to the Ukrainian authorities",
        "limit the effect of Western sanctions",
        "capture of Pokrovsk",
        "central square",
        "Fighting is still going on in Pokrovsk",
        "Vovchansk",
        "north-eastern",
        "about 701 km²",
        "November 2025",
        "long-range missiles and drones",
        "late October 2025",
        "Rosneft",
        "Lukoil",
        "Andriy Yermak",
        "corruption affair",
        "crucial",
        "outcome and timetable remain uncertain",
        "technical adjustments",
        "date not given",
    ],
    "fr": [
        "Steve Witkoff",
        "Jared Kushner",
        "arrivée à Moscou",
        "Vnoukovo",
        "Kirill Dmitriev",
        "Selon Dmitri Peskov (porte-parole du Kremlin)",
        "aussi longtemps que nécessaire",
        "après 15\u00a0h heure de Paris (17\u00a0h heure de Moscou), mardi 2 décembre 2025",
        "Selon le Kremlin",
        "Kushner participerait",
        "Selon la Maison Blanche",
        "très optimiste",
        "document en plusieurs points",
        "consultations avec l'Ukraine",
        "Emmanuel Macron",
        "Donald Trump",
        "garanties de sécurité",
        "Volodymyr Zelensky",
        "Selon les autorités ukrainiennes",
        "l'effet des sanctions occidentales",
        "prise de Pokrovsk",
        "place centrale",
        "Les combats se poursuivent à Pokrovsk",
        "Vovtchansk",
        "nord-est",
        "environ 701\u00a0km²",
        "novembre 2025",
        "drones de longue portée",
        "fin octobre 2025",
        "Rosneft",
        "Lukoil",
        "Andriï Iermak",
        "affaire de corruption",
        "cruciale",
        "restent incertains",
        "ajustements techniques",
        "date non précisée",
    ],
}


@pytest.fixture(scope="module")
def renderer() -> DigestRenderer:
    return DigestRenderer()


def digest_for(
    state, locale: str, zone: str = "Europe/Paris", now: datetime = DAY_OF_REPORT
) -> Digest:
    return compose(state, ReaderOptions(locale=locale, timezone=zone), Window.ending(now))


def visible_text(html: str) -> str:
    class Collector(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    collector = Collector()
    collector.feed(html)
    return " ".join(" ".join(collector.parts).split())


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_every_seed_fact_is_in_every_format(seed_state, renderer, locale, fmt) -> None:
    out = renderer.render(digest_for(seed_state, locale), fmt)
    if fmt == "html":
        out = visible_text(out)
    elif fmt == "markdown":
        out = out.replace("\\", "")
    out = " ".join(out.split())
    missing = [fact for fact in FACTS[locale] if " ".join(fact.split()) not in out]
    assert not missing


def test_contested_claim_shows_both_sides_attributed(seed_state, renderer) -> None:
    text = renderer.render(digest_for(seed_state, "en"), "text")
    block = text.split("Contested claims:")[1].split("Key figures:")[0]
    assert "The Russian authorities: Pokrovsk has been captured" in block
    assert "The Ukrainian authorities: Fighting is still going on in Pokrovsk" in block


def test_french_typography(seed_state, renderer) -> None:
    text = renderer.render(digest_for(seed_state, "fr"), "text")
    assert "Où en est-on (2 décembre 2025)\u202f: " in text and "Chiffres clés\u202f:" in text
    assert "« " not in text and " »" not in text and " ;" not in text and " :" not in text
    assert "«\u202ftrès optimiste\u202f»" in text and "Pokrovsk a été prise\u202f;" in text
    assert "17 h" not in text and "17:00" not in text and "17\u00a0h" in text
    first = renderer.render(
        digest_for(seed_state, "fr", now=datetime(2026, 3, 1, 8, tzinfo=UTC)), "text"
    )
    assert "dimanche 1er mars 2026" in first


def test_empty_window_is_said_plainly(seed_state, renderer) -> None:
    later = datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
    en = renderer.render(digest_for(seed_state, "en", now=later), "text")
    fr = renderer.render(digest_for(seed_state, "fr", now=later), "text")
    assert "No new developments since 9 January 2026, 08:00 (Paris time)." in en
    assert "Aucun nouveau développement depuis le 9 janvier 2026, 8\u00a0h (heure de Paris)." in fr
    assert "What's new" not in en


def test_json_form_is_versioned_and_round_trips(seed_state, renderer) -> None:
    digest = digest_for(seed_state, "fr")
    data = json.loads(renderer.render(digest, "json"))
    assert data["schema_version"] == 2
    assert data["locale"] == "fr" and data["timezone"] == "Europe/Paris"
    assert Digest.model_validate(data) == digest


HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def test_html_escapes_state_text(state_dir: Path, renderer) -> None:
    write_developments(
        state_dir,
        extra_development(
            "hostile-one", title_en=HOSTILE[0], title_fr=HOSTILE[0], recorded="2025-12-02T13:00:00Z"
        ),
        extra_development(
            "hostile-two", title_en=HOSTILE[1], title_fr=HOSTILE[1], recorded="2025-12-02T13:00:00Z"
        ),
    )
    digest = digest_for(load_state(state_dir), "en")
    html = renderer.render(digest, "html")

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []
            self.attrs: list[str] = []

        def handle_starttag(self, tag, attrs) -> None:
            self.tags.append(tag)
            self.attrs.extend(name for name, _ in attrs)

    parser = Tags()
    parser.feed(html)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert "onerror" not in parser.attrs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    # the text still reads as the original once the HTML is parsed
    assert HOSTILE[0] in visible_text(html) and HOSTILE[1] in visible_text(html)
    markdown = renderer.render(digest, "markdown")
    assert "\\<script\\>" in markdown and "<script>" not in markdown


def test_html_has_no_external_resources(seed_state, renderer) -> None:
    html = renderer.render(digest_for(seed_state, "en"), "html")
    assert (
        "<link" not in html and "<img" not in html and "src=" not in html and "@import" not in html
    )
    assert 'name="viewport"' in html and "max-width:640px" in html


def test_templates_dir_overrides_one_file(seed_state, tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        "{{ d.story }} / {{ t('at_a_glance') }}\n", encoding="utf-8"
    )
    custom = DigestRenderer(templates_dir=tmp_path)
    assert (
        custom.render(digest_for(seed_state, "fr"), "text")
        == "Pourparlers de paix États-Unis–Russie–Ukraine / En bref\n"
    )
    assert "<html" in custom.render(digest_for(seed_state, "fr"), "html")


def test_user_templates_are_sandboxed(seed_state, tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        "{{ d.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="template"):
        DigestRenderer(templates_dir=tmp_path).render(digest_for(seed_state, "en"), "text")


def test_unknown_format(seed_state, renderer) -> None:
    with pytest.raises(ConfigError, match="unknown format 'pdf'"):
        renderer.render(digest_for(seed_state, "en"), "pdf")


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> Ran:
    """``briefing ARGS`` in this process, through the script's error handling."""
    return Ran(*invoke(*args, env=dict(os.environ)))


def run_script(*args: str) -> Ran:
    """``briefing ARGS`` as a real process."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, check=False
    )
    return Ran(result.returncode, result.stdout, result.stderr)


@pytest.mark.parametrize("fmt", [*FORMATS, "json"])
@pytest.mark.parametrize("locale", ["en", "fr"])
def test_cli_preview_every_format(fmt, locale) -> None:
    result = run_cli(
        "preview",
        "--now",
        "2025-12-02T18:00:00Z",
        "--timezone",
        "Europe/Paris",
        "--locale",
        locale,
        "--format",
        fmt,
    )
    assert result.returncode == 0, result.stderr
    assert ("Pokrovsk" in result.stdout) and ("Lukoil" in result.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--topics", "weather"], "unknown topic 'weather'"),
        (["--locale", "de"], "unknown locale 'de'"),
        (["--format", "pdf"], "unknown format 'pdf'"),
        (["--timezone", "Mars/Base"], "unknown timezone 'Mars/Base'"),
        (["--now", "tomorrow"], "--now: 'tomorrow' is not an ISO 8601"),
        (["--since", "2025-13-01"], "--since"),
    ],
)
def test_cli_preview_bad_options(args, message) -> None:
    result = run_cli("preview", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("run", [run_cli, run_script], ids=["in-process", "script"])
def test_cli_preview_since_and_naive_times_use_reader_zone(run) -> None:
    result = run(
        "preview",
        "--now",
        "2025-12-03T08:00",
        "--since",
        "2025-12-02T13:00",
        "--timezone",
        "Europe/Paris",
    )
    assert result.returncode == 0, result.stderr
    assert "New since 2 December 2025, 13:00 (Paris time)" in result.stdout
    assert "Wednesday 3 December 2025" in result.stdout
