"""What the operations share: the current state files and the "not found" error."""

from __future__ import annotations

from pathlib import Path

from bot.errors import ConfigError
from bot.settings import Settings
from bot.state import State, load_state


class NotFound(ConfigError):
    """No such subscription (or it was removed)."""


def current_state(settings: Settings) -> State:
    """The state files as they are now (what previews and subscriptions are checked
    against, so that an edit can be checked before it is imported)."""
    from bot.service import state_dir

    return load_state(state_dir(settings), base=Path.cwd())
