"""What a delivery is and how it ends: statuses, triggers, the outcome of one attempt, and
the retry policy every sender shares (the worker and one-off sends)."""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.digest.model import Digest
from bot.digest.render import DigestRenderer
from bot.errors import (
    BriefingError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from bot.outputs.base import Envelope, Message, Output, Receipt, Target
from bot.redact import scrub

log = logging.getLogger("briefing.delivery")


class Status(StrEnum):
    """Where an outbox row stands; delivered, dead and skipped are final."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        return self in (Status.DELIVERED, Status.DEAD, Status.SKIPPED)


class Trigger(StrEnum):
    """Why a row was queued. ``forced`` is a manual send to a paused subscription."""

    SCHEDULED = "scheduled"
    CATCH_UP = "catch-up"
    MANUAL = "manual"
    FORCED = "forced"


OPERATOR = "config"
"""``code`` of a failure that is the operator's (settings, templates): it is retried and never
counts against the reader's subscription."""


@dataclass(frozen=True)
class Outcome:
    """What one delivery came to: its new status, the receiver's status code and answer,
    the parts that went through, when to try again, and whether to pause the subscription."""

    status: Status
    answer: str = ""
    code: str | None = None
    parts: int = 0
    retry_at: datetime | None = None
    pause: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status in (Status.DELIVERED, Status.SKIPPED)


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

    def after_failure(
        self, error: DeliveryError, *, attempt: int, parts: int, now: datetime, code: str | None
    ) -> Outcome:
        """The outcome of failed try ``attempt``: pending with its next try, or dead."""
        parts = max(parts, error.parts_done)
        code = code or (str(error.status) if error.status is not None else "error")
        wait = self.next_wait(attempt, error)
        if wait is not None:
            return Outcome(
                Status.PENDING, error.reason, code, parts,
                retry_at=now + timedelta(seconds=wait), attempts=attempt,
            )  # fmt: skip
        gone = isinstance(error, PermanentDeliveryError) and error.gone
        pause = f"receiver answered {error.status}: the target is gone" if gone else None
        return Outcome(Status.DEAD, error.reason, code, parts, pause=pause, attempts=attempt)


SCHEDULED = RetryPolicy()
ONE_OFF = RetryPolicy(attempts=4, base=1.0, factor=2.0, cap=8.0, max_wait=60.0)


def render_message(renderer: DigestRenderer, digest: Digest, output: type[Output]) -> Message:
    """Render ``digest`` in every format ``output`` needs."""
    return Message(digest=digest, bodies={f: renderer.render(digest, f) for f in output.formats})


async def send_within(
    output: Output, target: Target, message: Message, *, envelope: Envelope, seconds: float
) -> Receipt:
    """``output.send``, abandoned (its connections closed) if it has no outcome within
    ``seconds``: then raise ``RetryableDeliveryError``."""
    try:
        async with asyncio.timeout(seconds):
            return await output.send(target, message, envelope=envelope)
    except TimeoutError as exc:
        raise RetryableDeliveryError(
            f"no outcome within {seconds:g} s (the send was abandoned)"
        ) from exc


async def _try_once(
    output: Output, target: Target, message: Message, *, envelope: Envelope, seconds: float
) -> Receipt:
    """``send_within``, an error no output should raise logged once with its traceback (the
    target hidden) and raised as ``RetryableDeliveryError``."""
    try:
        return await send_within(output, target, message, envelope=envelope, seconds=seconds)
    except BriefingError:
        raise
    except Exception as exc:
        shown = "".join(traceback.format_exception(exc)).rstrip()
        log.error(
            "send %s failed with an unexpected error\n%s",
            envelope.delivery_id, scrub(shown, target.address, target.secrets),
        )  # fmt: skip
        reason = scrub(str(exc), target.address, target.secrets)
        raise RetryableDeliveryError(f"unexpected error: {type(exc).__name__}: {reason}") from exc


async def deliver(
    output: Output,
    target: Target,
    message: Message,
    *,
    envelope: Envelope,
    policy: RetryPolicy = ONE_OFF,
    send_timeout: float = 300.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Outcome:
    """Send with retries in this process (for one-off sends); never raises a delivery error.
    A try that outlives ``send_timeout`` seconds, or fails with an error no output should raise,
    is a retryable failure."""
    parts = envelope.first_part
    for attempt in range(1, policy.attempts + 1):
        try:
            receipt = await _try_once(
                output, target, message,
                envelope=replace(envelope, first_part=parts), seconds=send_timeout,
            )  # fmt: skip
        except DeliveryError as exc:
            now = clock()
            outcome = policy.after_failure(exc, attempt=attempt, parts=parts, now=now, code=None)
            if outcome.retry_at is None:
                return outcome
            parts = outcome.parts
            await sleep((outcome.retry_at - now).total_seconds())
        else:
            return Outcome(
                Status.DELIVERED, receipt.answer, receipt.status, receipt.parts, attempts=attempt
            )
    raise AssertionError("unreachable: the loop returns on its last attempt")
