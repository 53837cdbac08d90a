"""French typography as the renderer applies it to every printed value of a French digest."""

from __future__ import annotations

import pytest

from bot.digest.formatting import french_typography

NNBSP, NBSP = "\u202f", "\u00a0"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("prise ; elles", f"prise{NNBSP}; elles"),
        ("mot: suite", f"mot{NNBSP}: suite"),
        (f"mot{NBSP}: suite", f"mot{NNBSP}: suite"),
        ("vraiment ?", f"vraiment{NNBSP}?"),
        ("« très optimiste »", f"«{NNBSP}très optimiste{NNBSP}»"),
        ("«bientôt»", f"«{NNBSP}bientôt{NNBSP}»"),
        ("après 17h, heure", f"après 17{NBSP}h, heure"),
        ("à 8 h 30", f"à 8{NBSP}h{NBSP}30"),
        # left alone: addresses, times written with a colon, HTML entities, CSS
        ("https://example.org/?a=b", "https://example.org/?a=b"),
        ("à 17:00", "à 17:00"),
        ("Rosneft &amp; Lukoil", "Rosneft &amp; Lukoil"),
        ("margin:0;padding:0", "margin:0;padding:0"),
        ("5 hectares", "5 hectares"),
    ],
)
def test_french_spacing(given: str, expected: str) -> None:
    assert french_typography(given) == expected
    assert french_typography(expected) == expected  # idempotent
