"""Deliver one message through one output, with the retry policy every caller shares."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.digest.model import Digest
from bot.digest.render import DigestRenderer
from bot.errors import DeliveryError, PermanentDeliveryError
from bot.outputs.base import Envelope, Message, Output, Target


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring a receiver's retry-after.

    The n-th wait is ``base * factor**(n-1)``, capped, then jittered to between half and all
    of it; the defaults give about 30 s, 2 min, 8 min, 32 min, 2 h, 8 h and 8 h: 8 attempts
    over roughly 10 to 19 hours. ``attempts`` counts every try, the first included; a
    retry-after longer than ``max_wait`` ends the retries.
    """

    attempts: int = 8
    base: float = 30.0
    factor: float = 4.0
    cap: float = 8 * 3600.0
    max_wait: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")

    def next_wait(self, attempt: int, error: DeliveryError) -> float | None:
        """Seconds before trying again after failed try ``attempt``, or None to give up
        (a permanent error, the last attempt, or a retry-after beyond ``max_wait``)."""
        if isinstance(error, PermanentDeliveryError) or attempt >= self.attempts:
            return None
        wait = self.delay(attempt, retry_after=error.retry_after)
        return wait if wait <= self.max_wait else None

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        full = min(self.cap, self.base * self.factor ** (attempt - 1))
        backoff = random.uniform(full / 2, full)  # noqa: S311 - jitter, not secrecy
        return max(backoff, retry_after or 0.0)


ONE_OFF = RetryPolicy(attempts=4, base=1.0, factor=2.0, cap=8.0, max_wait=60.0)


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery: final status, the receiver's answer, tries made."""

    ok: bool
    status: str
    answer: str
    attempts: int
    parts: int = 0


def render_message(renderer: DigestRenderer, digest: Digest, output: type[Output]) -> Message:
    """Render ``digest`` in every format ``output`` needs."""
    return Message(digest=digest, bodies={f: renderer.render(digest, f) for f in output.formats})


async def deliver(
    output: Output,
    target: Target,
    message: Message,
    *,
    envelope: Envelope,
    policy: RetryPolicy = ONE_OFF,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Outcome:
    """Send with retries in this process (for one-off sends); never raises a delivery error."""
    first_part = envelope.first_part
    for attempt in range(1, policy.attempts + 1):
        try:
            receipt = await output.send(
                target, message,
                envelope=Envelope(envelope.delivery_id, first_part, envelope.unsubscribe_token),
            )  # fmt: skip
        except DeliveryError as exc:
            first_part = max(first_part, exc.parts_done)
            wait = policy.next_wait(attempt, exc)
            if wait is None:
                status = str(exc.status) if exc.status is not None else "error"
                return Outcome(
                    ok=False, status=status, answer=exc.reason, attempts=attempt, parts=first_part
                )
            await sleep(wait)
        else:
            return Outcome(
                ok=True, status=receipt.status, answer=receipt.answer, attempts=attempt,
                parts=receipt.parts,
            )  # fmt: skip
    raise AssertionError("unreachable: the loop returns on its last attempt")
