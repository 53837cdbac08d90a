from __future__ import annotations

import pytest

from bot.outputs import HttpLimits, OutputContext, TargetPolicy
from tests.outputs.conftest import settings_for


@pytest.fixture
async def ctx(tmp_path):
    """Outputs' context for the worker tests: private targets allowed (receivers on
    127.0.0.1), timeouts generous for a busy machine."""
    context = OutputContext(
        settings=settings_for(tmp_path),
        policy=TargetPolicy(allow_private=True),
        limits=HttpLimits(connect_timeout=2.5, total_timeout=2.5),
    )
    yield context
    await context.aclose()
