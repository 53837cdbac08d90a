"""The briefing state: domain model and YAML loader/validator."""

from bot.state.loader import State, load_state, parse_state, read_state_files
from bot.state.model import LOCALES, Development, Standing, Topic

__all__ = [
    "LOCALES",
    "Development",
    "Standing",
    "State",
    "Topic",
    "load_state",
    "parse_state",
    "read_state_files",
]
