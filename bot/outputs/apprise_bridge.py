"""Apprise: any service Apprise knows (``tgram://``, ``pover://``, ``mailto://``, ``json://``…)
as a target, for platforms the bot has no output of its own for.

An optional extra (``pip install briefing-bot[apprise]``): the rest of the bot never
imports Apprise; without it, this output refuses targets and sends with a ``ConfigError``
(the operator's mistake: retried, never counted against the reader). The digest goes out
as markdown (the chat form: state text escaped, mentions made inert), in parts that fit
the service's body limit.

Apprise sends on its own HTTP stack, so the bot's guard can only check the service's host
before each send (when the URL names one): it cannot pin the connection to the checked
address, follow what Apprise resolves, or forbid redirects. Native outputs are preferred.
Apprise's own log lines may quote tokens, so they are not passed on to the bot's logs.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
from types import SimpleNamespace
from typing import Any

from bot.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    TargetError,
)
from bot.outputs.api import hide
from bot.outputs.base import Envelope, Message, Output, OutputContext, Receipt, Target
from bot.outputs.fit import fit_text, pack_text
from bot.outputs.webhooks import chunks_of

BODY_LIMIT = 4000  # when a service does not say how long a body may be
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_PIECE = re.compile(r"[/:@?&=#]")


def load_apprise() -> Any:
    """The ``apprise`` module; ``ConfigError`` saying how to install it when it is missing."""
    try:
        module = importlib.import_module("apprise")
    except ImportError as exc:
        raise ConfigError(
            "the apprise output needs Apprise: pip install 'briefing-bot[apprise]'"
        ) from exc
    logging.getLogger("apprise").propagate = False  # its lines may quote tokens
    return module


class AppriseOutput(Output):
    """Delivery through Apprise: markdown, split to the service's ``body_maxlen``; a failed
    notification is retried (Apprise says no more than that it failed); a URL Apprise
    cannot use is refused."""

    name = "apprise"
    formats = ("chat",)
    target_form = "an Apprise URL (tgram://…, pover://…, json://…)"
    limits_kept = "the service's body_maxlen"
    secrets_needed = "none (the whole URL is the secret)"

    def __init__(self, context: OutputContext) -> None:
        super().__init__(context)
        self._module: Any = None

    @property
    def apprise(self) -> Any:
        """The Apprise module, loaded when first used (``ConfigError`` if it is missing), so
        that a bot without Apprise starts and only this output's targets fail."""
        if self._module is None:
            self._module = load_apprise()
        return self._module

    @classmethod
    def claims(cls, address: str) -> bool:
        """A URL of any scheme but http(s) is an Apprise URL."""
        scheme, found, _ = address.strip().partition("://")
        return bool(found) and scheme.isascii() and scheme.lower() not in ("http", "https")

    async def validate(self, target: Target) -> Target:
        plugin = self._plugin(target.address.strip())
        if plugin is None:
            scheme = target.address.strip().partition("://")[0][:20]
            raise TargetError(f"Apprise has no service for this {scheme}:// URL, or cannot read it")
        await self._check_host(plugin)
        return Target(target.kind, target.address.strip(), target.secrets)

    async def send(self, target: Target, message: Message, *, envelope: Envelope) -> Receipt:
        try:
            plugin = self._plugin(target.address)
            if plugin is None:
                raise PermanentDeliveryError("Apprise cannot use this URL")
            title, bodies = self._parts(message, plugin)
            for index in range(envelope.first_part, len(bodies)):
                try:
                    await self._check_host(plugin)
                except TargetError as exc:
                    raise PermanentDeliveryError(str(exc)) from exc
                try:
                    await self._notify(plugin, _numbered(title, index, len(bodies)), bodies[index])
                except DeliveryError as exc:
                    exc.parts_done = index
                    raise
        except DeliveryError as exc:
            exc.reason = hide(exc.reason, _pieces(target.address))
            exc.args = (exc.reason,)
            raise
        return Receipt(status="sent", parts=len(bodies))

    def payloads(self, message: Message) -> list[dict[str, Any]]:
        """What each part hands to Apprise (title and markdown body), for ``briefing
        preview``: as for a service with a title and bodies of up to ``BODY_LIMIT``
        characters (a service's own limits may make more parts; Apprise then writes them
        in the service's format)."""
        title, bodies = self._parts(message, SimpleNamespace(title_maxlen=250))
        total = len(bodies)
        return [{"title": _numbered(title, n, total), "body": b} for n, b in enumerate(bodies)]

    def _plugin(self, url: str) -> Any:
        notifier = self.apprise.Apprise
        try:
            return notifier.instantiate(url)
        except Exception:  # Apprise's plugins may raise anything on a URL they dislike
            return None

    def _parts(self, message: Message, plugin: Any) -> tuple[str, list[str]]:
        """The title (the digest's, as plain text) and the markdown bodies, each within the
        service's ``body_maxlen`` (less the title where Apprise puts it in the body)."""
        chunks = chunks_of(message.body("chat"))
        head, rest = chunks[0], chunks[1:]
        title = _MARKDOWN_ESCAPE.sub(r"\1", head.title)
        title_room = int(getattr(plugin, "title_maxlen", 0) or 0)
        limit = int(getattr(plugin, "body_maxlen", 0) or 0) or BODY_LIMIT
        if title_room <= 0:  # the service has no title: Apprise puts it in the body
            limit -= len(title) + 12
        else:
            title = title[: max(0, title_room - 12)]
        limit = max(limit, 200)
        pieces = [head.body] if head.body else []
        for chunk in rest:
            pieces += fit_text(f"**{chunk.title}**\n{chunk.body}".strip(), limit)
        return title, pack_text(pieces, limit, joiner="\n\n")

    async def _check_host(self, plugin: Any) -> None:
        """Check the host the service's URL names (an SMTP server for email), if any, by
        the SSRF rule and the egress allow-list; a cloud service's URL names no host, only
        its tokens, so with an allow-list set (every connection confined) it is refused."""
        host = getattr(plugin, "smtp_host", None) or (
            getattr(plugin, "host", None)
            if any("{host}" in t for t in getattr(plugin, "templates", ()))
            else None
        )
        if not host:
            if self.context.policy.egress is not None:
                raise TargetError(
                    f"BRIEFING_EGRESS_ALLOWLIST is set, and Apprise's {type(plugin).__name__} "
                    "connects to a host its URL does not name, which the bot cannot check"
                )
            return
        secure = bool(getattr(plugin, "secure", False))
        port = getattr(plugin, "port", None) or getattr(plugin, "smtp_port", None)
        await self.context.policy.addresses(str(host), int(port or (443 if secure else 80)))

    async def _notify(self, plugin: Any, title: str, body: str) -> None:
        notifier = self.apprise.Apprise()
        notifier.add(plugin)
        timeout = self.context.limits.total_timeout
        try:
            async with asyncio.timeout(timeout):
                result = await asyncio.to_thread(
                    notifier.notify,
                    body=body,
                    title=title,
                    body_format=self.apprise.NotifyFormat.MARKDOWN,
                )
        except TimeoutError as exc:
            raise RetryableDeliveryError(f"no answer within {timeout:g} s") from exc
        except Exception as exc:  # a plugin may raise anything while it sends
            raise RetryableDeliveryError(f"Apprise failed: {type(exc).__name__}: {exc}") from exc
        if not result:
            raise RetryableDeliveryError(f"Apprise could not deliver{_detail(result)}")


def _numbered(title: str, index: int, total: int) -> str:
    """The title of part ``index`` of ``total``: ``title (2/3)``; the title alone for one."""
    return f"{title} ({index + 1}/{total})" if total > 1 else title


def _detail(result: Any) -> str:
    """What Apprise (2.x) logged about a failure, when it says: its last warning or error."""
    logs = getattr(result, "logs", None)
    if not callable(logs):
        return ""
    said = [entry.message for entry in logs() if entry.level in ("WARNING", "ERROR")]
    return f": {said[-1][:300]}" if said else ""


def _pieces(url: str) -> set[str]:
    """The pieces of an Apprise URL that may be tokens or passwords (all but the scheme)."""
    rest = url.partition("://")[2]
    return {rest, *(piece for piece in _PIECE.split(rest) if piece)}
