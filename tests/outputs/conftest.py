from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.delivery import render_message
from bot.digest import Digest, DigestRenderer, ReaderOptions, Window, compose
from bot.outputs import HttpLimits, Message, OutputContext, TargetPolicy, output_class
from bot.settings import Settings
from bot.state import load_state
from tests.conftest import SEED_STATE, extra_development, write_developments

NOW = datetime(2025, 12, 2, 18, 0, tzinfo=UTC)
FAST = HttpLimits(connect_timeout=1.0, total_timeout=1.5, max_connections=8)


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": tmp_path / "home",
        "mail_dir": tmp_path / "mail",
        "mail_from": "Briefing <briefing@example.org>",
        "allow_private_targets": True,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def context(tmp_path: Path) -> AsyncIterator[OutputContext]:
    ctx = OutputContext(
        settings=settings_for(tmp_path), policy=TargetPolicy(allow_private=True), limits=FAST
    )
    yield ctx
    await ctx.aclose()


@pytest.fixture(scope="session")
def digest(seed_state) -> Digest:
    return compose(seed_state, ReaderOptions(timezone="Europe/Paris"), Window.ending(NOW))


@pytest.fixture(scope="session")
def long_digest(tmp_path_factory) -> Digest:
    """A digest far longer than any chat platform takes in one message."""
    directory = tmp_path_factory.mktemp("long") / "state"
    shutil.copytree(SEED_STATE, directory)
    words = " ".join(f"word{i} https://example.org/very/long/link/{i}" for i in range(60))
    items = [
        extra_development(
            f"filler-{n:03d}",
            topic=("talks", "sanctions", "military", "politics")[n % 4],
            recorded="2025-12-02T13:00:00Z",
            title_en=f"Filler development number {n} " + "x" * 20,
            title_fr=f"Développement de remplissage {n}",
            summary_en=f"Summary {n}: {words}",
        )
        for n in range(120)
    ]
    write_developments(directory, *items)
    state = load_state(directory)
    return compose(state, ReaderOptions(timezone="Europe/Paris"), Window.ending(NOW))


@pytest.fixture(scope="session")
def renderer() -> DigestRenderer:
    return DigestRenderer()


def message_for(renderer: DigestRenderer, digest: Digest, kind: str) -> Message:
    return render_message(renderer, digest, output_class(kind))
