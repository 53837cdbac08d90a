"""Find outputs through the ``briefing.outputs`` entry-point group (built-ins included)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.outputs.base import Output, OutputContext

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
    """Guess the output for an address: the output that claims it (an output class may
    have a ``claims(address)`` class method: a Telegram channel name, a Matrix room link,
    an Apprise URL), email for addresses, else the output whose ``hosts`` has the URL's
    host; ``generic`` when none does."""
    for name, cls in output_classes().items():
        claims = getattr(cls, "claims", None)
        if callable(claims) and claims(address):
            return name
    if address.startswith("mailto:") or ("@" in address and "://" not in address):
        return "email"
    try:
        host = (urlsplit(address).hostname or "").lower()
    except ValueError:
        return "generic"
    for name, cls in output_classes().items():
        for known in getattr(cls, "hosts", ()):
            if host == known or host.endswith("." + known):
                return name
    return "generic"


class OutputPool:
    """The outputs one process uses, each built once on a shared context."""

    def __init__(self, context: OutputContext) -> None:
        self.context = context
        self._built: dict[str, Output] = {}

    def get(self, kind: str) -> Output:
        """The output for ``kind``; ``ConfigError`` if it is unknown or its settings are bad."""
        if kind not in self._built:
            self._built[kind] = output_class(kind)(self.context)
        return self._built[kind]

    def check(self, kinds: Iterable[str] | None = None) -> list[Output]:
        """Build every output among ``kinds`` (all registered ones by default) now, so that
        a bad setting stops the process before anything is sent."""
        return [self.get(kind) for kind in sorted(output_classes() if kinds is None else kinds)]

    async def aclose(self) -> None:
        """Release what the outputs hold (pooled connections)."""
        built, self._built = self._built, {}
        for output in built.values():
            await output.aclose()
