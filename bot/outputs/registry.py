"""Find outputs through the ``briefing.outputs`` entry-point group (built-ins included)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.outputs.base import Output

GROUP = "briefing.outputs"


@cache
def output_classes() -> dict[str, type[Output]]:
    """Every registered output by name; a broken plugin is an error naming it."""
    found: dict[str, type[Output]] = {}
    for entry in entry_points(group=GROUP):
        try:
            cls = entry.load()
        except Exception as exc:  # a plugin may fail in any way on import
            where = f"output plugin {entry.name!r} ({entry.value})"
            raise ConfigError(f"{where} failed to load: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Output)):
            raise ConfigError(f"output plugin {entry.name!r} ({entry.value}) is not an Output")
        found[entry.name] = cls
    return found


def output_class(name: str) -> type[Output]:
    """The output registered as ``name``; raise ``ConfigError`` listing the known ones."""
    classes = output_classes()
    if name not in classes:
        raise ConfigError(f"unknown output kind {name!r} (known: {', '.join(sorted(classes))})")
    return classes[name]


def infer_kind(address: str) -> str:
    """Guess the output for an address: email for addresses, else by the webhook's host."""
    if address.startswith("mailto:") or ("@" in address and "://" not in address):
        return "email"
    host = (urlsplit(address).hostname or "").lower()
    for name, cls in output_classes().items():
        for known in getattr(cls, "hosts", ()):
            if host == known or host.endswith("." + known):
                return name
    return "generic"
