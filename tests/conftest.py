from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.state import State, load_state
from tests.receivers import HttpReceiver, RecordingHandler, start_smtp

ROOT = Path(__file__).resolve().parents[1]
SEED_STATE = ROOT / "config" / "state"


@pytest.fixture(scope="session")
def seed_state() -> State:
    return load_state(SEED_STATE)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A private copy of the seed state, free to change."""
    target = tmp_path / "state"
    shutil.copytree(SEED_STATE, target)
    return target


def extra_development(
    dev_id: str,
    *,
    topic: str = "talks",
    recorded: str = "2025-12-03T09:00:00Z",
    title_en: str = "A later development",
    title_fr: str = "Un développement ultérieur",
    standing: str = "confirmed",
    importance: int = 3,
    when: str = "{at: 2025-12-03}",
    summary_en: str | None = None,
) -> str:
    """YAML for one more development, to append to a state directory."""
    return f"""
  - id: {dev_id}
    topic: {topic}
    when: {when}
    recorded: {recorded}
    standing: {standing}
    importance: {importance}
    title: {{en: {json.dumps(title_en)}, fr: {json.dumps(title_fr)}}}
    summary: {{en: {json.dumps(summary_en or f"Summary of {dev_id}.")}, fr: Résumé de {dev_id}.}}
    sources: [report-2025-12-02]
"""


def write_developments(directory: Path, *items: str, name: str = "zz_extra.yaml") -> None:
    (directory / name).write_text("developments:" + "".join(items), encoding="utf-8")


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request, tmp_path):
    """A real, migrated database: a SQLite file, then a fresh PostgreSQL database."""
    from tests.dbs import open_db

    async with open_db(request.param, tmp_path) as database:
        yield database


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    server = HttpReceiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[int, RecordingHandler]]:
    controller, handler = start_smtp()
    yield controller.port, handler
    controller.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first, so that under ``-n`` they overlap the quick ones instead of
    finishing last. A stable sort: every worker collects the same order."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
