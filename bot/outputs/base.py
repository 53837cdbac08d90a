"""The output contract: what every delivery channel implements, and what it is given."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bot.digest.model import Digest

if TYPE_CHECKING:
    import httpx

    from bot.outputs.network import HttpLimits, TargetPolicy
    from bot.settings import Settings


@dataclass(frozen=True)
class Target:
    """Where to deliver: a webhook URL or an email address, plus per-target secrets.

    ``secrets`` holds the signing secrets of a generic webhook; more than one while a
    secret is being rotated (every one signs, so the receiver may hold either).
    """

    kind: str
    address: str
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Message:
    """A digest rendered in the formats one output needs, shared by every receiver.

    ``memo`` lets an output keep what it derives from the message (encoded payloads, a
    MIME body) so that thousands of receivers of one message cost one encoding.
    """

    digest: Digest
    bodies: Mapping[str, str]
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def body(self, fmt: str) -> str:
        return self.bodies[fmt]


@dataclass(frozen=True)
class Envelope:
    """What is particular to one delivery: its stable id, and where a retry resumes.

    ``delivery_id`` is the same across retries (``webhook-id``, ``Message-ID``);
    ``first_part`` skips the parts of a split message that already went through.
    ``unsubscribe_token`` and ``subscribed_at`` tell the reader why they get the message
    and how to stop it; a one-off message (no subscription) has neither.
    """

    delivery_id: str
    first_part: int = 0
    unsubscribe_token: str | None = None
    subscribed_at: datetime | None = None


@dataclass(frozen=True)
class Receipt:
    """A successful delivery: the receiver's status and answer, and the parts sent."""

    status: str
    answer: str = ""
    parts: int = 1


@dataclass
class OutputContext:
    """What outputs share in one process: settings, the guarded HTTP client, limits."""

    settings: Settings
    policy: TargetPolicy
    limits: HttpLimits
    _http: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            from bot.outputs.network import build_client

            self._http = build_client(self.policy, self.limits)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


class Output(ABC):
    """One delivery channel. Register a subclass under the ``briefing.outputs`` entry points.

    ``formats`` names the renders ``send`` needs (``message.body(fmt)``). ``target_form``,
    ``limits_kept`` and ``secrets_needed`` say, for ``briefing outputs``, what a target looks
    like, the platform's limits the output keeps, and the secrets a target needs.
    """

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]
    target_form: ClassVar[str] = ""
    limits_kept: ClassVar[str] = ""
    secrets_needed: ClassVar[str] = ""

    def __init__(self, context: OutputContext) -> None:
        self.context = context

    @abstractmethod
    async def validate(self, target: Target) -> Target:
        """Check and normalise a target; raise ``TargetError`` naming the problem."""

    @abstractmethod
    async def send(self, target: Target, message: Message, *, envelope: Envelope) -> Receipt:
        """Deliver ``message``; raise ``RetryableDeliveryError`` or ``PermanentDeliveryError``."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections this output holds."""
