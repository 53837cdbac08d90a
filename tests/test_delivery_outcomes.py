"""How a failed try becomes an outcome, and how a one-off send retries.

The one-off sender is driven by an in-memory output that answers from a script, with the
sleep it would take recorded instead of slept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.delivery import (
    ONE_OFF,
    OPERATOR,
    SCHEDULED,
    Outcome,
    RetryPolicy,
    Status,
    Trigger,
    deliver,
    render_message,
)
from bot.digest import DigestRenderer, ReaderOptions, Window, compose
from bot.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from bot.outputs.base import Envelope, Message, Output, Receipt, Target

NOW = datetime(2025, 12, 2, 18, 0, tzinfo=UTC)


def failure(
    kind: type[DeliveryError] = RetryableDeliveryError, *, parts_done: int = 0, **kwargs: object
) -> DeliveryError:
    error = kind("receiver said no", **kwargs)  # type: ignore[arg-type]
    error.parts_done = parts_done
    return error


HANG = None
"""A step of a script: the send never ends."""


class ScriptedOutput(Output):
    """An output that answers each send with the next step of its script: a receipt, an
    error raised, or ``HANG``."""

    name = "scripted"
    formats = ("text", "markdown")

    def __init__(self, script: Sequence[Exception | Receipt | None]) -> None:
        self.script = list(script)
        self.first_parts: list[int] = []
        self.ids: list[str] = []

    async def validate(self, target: Target) -> Target:
        return target

    async def send(self, target: Target, message: Message, *, envelope: Envelope) -> Receipt:
        self.first_parts.append(envelope.first_part)
        self.ids.append(envelope.delivery_id)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        if step is HANG:
            await asyncio.Event().wait()
        assert step is not None
        return step


@pytest.fixture(scope="module")
def message(seed_state) -> Message:
    digest = compose(seed_state, ReaderOptions(locale="en"), Window.ending(NOW, since=None))
    return render_message(DigestRenderer(), digest, ScriptedOutput)


async def one_off(
    message: Message,
    script: Sequence[Exception | Receipt | None],
    *,
    first_part: int = 0,
    address: str = "somewhere",
    **options: Any,
) -> tuple[Outcome, ScriptedOutput, list[float]]:
    output = ScriptedOutput(script)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    outcome = await deliver(
        output,
        Target(kind="scripted", address=address),
        message,
        envelope=Envelope("dlv_once", first_part=first_part),
        clock=lambda: NOW,
        sleep=sleep,
        **options,
    )
    return outcome, output, slept


def test_the_names_users_filter_and_read_by() -> None:
    assert [s.value for s in Status] == ["pending", "sending", "delivered", "dead", "skipped"]
    assert [t.value for t in Trigger] == ["scheduled", "catch-up", "manual", "forced"]
    assert OPERATOR == "config"
    assert {s for s in Status if s.final} == {Status.DELIVERED, Status.DEAD, Status.SKIPPED}
    assert {s for s in Status if Outcome(s).ok} == {Status.DELIVERED, Status.SKIPPED}


def test_a_single_attempt_policy_is_allowed() -> None:
    policy = RetryPolicy(attempts=1)
    assert policy.next_wait(1, failure()) is None


def test_waits_grow_up_to_the_cap_with_jitter_below_each_step() -> None:
    policy = RetryPolicy(attempts=9, base=10.0, factor=3.0, cap=50.0)
    for attempt, full in [(1, 10.0), (2, 30.0), (3, 50.0), (4, 50.0)]:
        waits = [policy.delay(attempt) for _ in range(200)]
        assert all(full / 2 <= w <= full for w in waits), (attempt, min(waits), max(waits))
        assert min(waits) < full * 0.6 and max(waits) > full * 0.9  # spread over the range


def test_a_short_backoff_is_not_stretched_and_a_short_retry_after_not_honoured_over_it() -> None:
    tiny = RetryPolicy(base=0.1)
    assert all(0.05 <= tiny.delay(1) <= 0.1 for _ in range(50))
    assert all(15 <= SCHEDULED.delay(1, retry_after=1.0) <= 30 for _ in range(50))
    assert SCHEDULED.delay(1, retry_after=45.5) == 45.5


def test_a_retry_after_of_exactly_the_longest_wait_is_honoured() -> None:
    for policy in (SCHEDULED, ONE_OFF):
        limit = policy.max_wait
        assert policy.next_wait(1, failure(retry_after=limit)) == limit
        assert policy.next_wait(1, failure(retry_after=limit + 1)) is None
    assert (SCHEDULED.max_wait, ONE_OFF.max_wait) == (24 * 3600, 60)


def test_one_off_sends_try_four_times_within_seconds() -> None:
    assert ONE_OFF.attempts == 4
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0)]:
        assert all(full / 2 <= ONE_OFF.delay(attempt) <= full for _ in range(50))
    assert all(4 <= ONE_OFF.delay(9) <= 8 for _ in range(50))  # capped at 8 s
    assert ONE_OFF.next_wait(3, failure()) is not None
    assert ONE_OFF.next_wait(4, failure()) is None


def test_a_retryable_failure_is_pending_with_its_next_try() -> None:
    policy = RetryPolicy(attempts=3)
    outcome = policy.after_failure(
        failure(status=503, parts_done=2), attempt=2, parts=1, now=NOW, code=None
    )
    assert (outcome.status, outcome.code, outcome.answer) == (
        Status.PENDING,
        "503",
        "receiver said no",
    )
    assert (outcome.parts, outcome.attempts, outcome.pause) == (2, 2, None)
    assert outcome.retry_at is not None
    assert NOW + timedelta(seconds=60) <= outcome.retry_at <= NOW + timedelta(seconds=120)


def test_parts_already_through_are_never_forgotten() -> None:
    outcome = SCHEDULED.after_failure(
        failure(status=500, parts_done=1), attempt=1, parts=3, now=NOW, code=None
    )
    assert outcome.parts == 3
    dead = SCHEDULED.after_failure(
        failure(PermanentDeliveryError, status=400, parts_done=4), attempt=1, parts=2, now=NOW,
        code=None,
    )  # fmt: skip
    assert (dead.status, dead.parts, dead.code, dead.retry_at) == (Status.DEAD, 4, "400", None)


def test_codes_name_the_operator_or_say_error_when_there_is_no_status() -> None:
    no_status = SCHEDULED.after_failure(failure(), attempt=1, parts=0, now=NOW, code=None)
    assert no_status.code == "error"
    operator = SCHEDULED.after_failure(
        failure(status=500), attempt=1, parts=0, now=NOW, code=OPERATOR
    )
    assert operator.code == "config" and operator.status == Status.PENDING


def test_only_a_gone_target_pauses_the_subscription() -> None:
    gone = SCHEDULED.after_failure(
        failure(PermanentDeliveryError, status=410, gone=True), attempt=1, parts=0, now=NOW,
        code=None,
    )  # fmt: skip
    assert gone.status == Status.DEAD
    assert gone.pause == "receiver answered 410: the target is gone"
    refused = SCHEDULED.after_failure(
        failure(PermanentDeliveryError, status=404), attempt=1, parts=0, now=NOW, code=None
    )
    assert refused.status == Status.DEAD and refused.pause is None
    last = RetryPolicy(attempts=2).after_failure(
        failure(status=503), attempt=2, parts=0, now=NOW, code=None
    )
    assert (last.status, last.pause, last.attempts, last.code) == (Status.DEAD, None, 2, "503")


def test_the_message_holds_every_format_the_output_needs(message) -> None:
    renderer = DigestRenderer()
    assert set(message.bodies) == {"text", "markdown"}
    for fmt in ScriptedOutput.formats:
        assert message.body(fmt) == renderer.render(message.digest, fmt)


async def test_a_one_off_send_retries_then_delivers(message) -> None:
    outcome, output, slept = await one_off(
        message,
        [
            failure(status=503),
            failure(status=429, retry_after=5, parts_done=2),
            Receipt("200", "ok", parts=3),
        ],
        first_part=1,
    )
    assert outcome == Outcome(Status.DELIVERED, "ok", "200", 3, attempts=3)
    assert output.first_parts == [1, 1, 2]  # the retry resumes after the parts through
    assert output.ids == ["dlv_once"] * 3
    assert len(slept) == 2 and 0.5 <= slept[0] <= 1.0 and slept[1] == 5.0


async def test_a_one_off_send_stops_at_a_permanent_error(message) -> None:
    outcome, output, slept = await one_off(message, [failure(PermanentDeliveryError, status=400)])
    assert (outcome.status, outcome.code, outcome.attempts) == (Status.DEAD, "400", 1)
    assert slept == [] and output.script == []


async def test_a_one_off_send_gives_up_after_its_attempts(message) -> None:
    errors = [failure(status=502) for _ in range(ONE_OFF.attempts)]
    outcome, output, slept = await one_off(message, [*errors, Receipt("200")])
    assert (outcome.status, outcome.code, outcome.attempts) == (Status.DEAD, "502", 4)
    assert len(output.first_parts) == 4 and len(slept) == 3
    assert all(0.5 <= s <= 4.0 for s in slept)


async def test_a_one_off_send_gives_up_on_a_retry_after_past_a_minute(message) -> None:
    outcome, _, slept = await one_off(
        message, [failure(status=429, retry_after=61), Receipt("200")]
    )
    assert (outcome.status, outcome.code, slept) == (Status.DEAD, "429", [])


async def test_a_one_off_send_that_raises_a_plain_error_retries_and_ends(message, caplog) -> None:
    url = "https://hooks.example.org/services/T0000/B1111/sEcReTtOkEn42"
    bug = RuntimeError(f"a bug in the plugin, posting to {url}")
    recovered, _, _ = await one_off(message, [bug, Receipt("200", "ok")], address=url)
    assert (recovered.status, recovered.attempts) == (Status.DELIVERED, 2)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(
        "send dlv_once failed with an unexpected error\nTraceback (most recent call last):"
    )
    outcome, _, slept = await one_off(message, [bug] * ONE_OFF.attempts, address=url)
    assert (outcome.status, outcome.code, outcome.attempts) == (Status.DEAD, "error", 4)
    assert outcome.answer.startswith("unexpected error: RuntimeError: a bug in the plugin")
    assert len(slept) == 3
    assert "sEcReTtOkEn42" not in outcome.answer + caplog.text


async def test_a_one_off_send_that_hangs_is_abandoned_and_retried(message) -> None:
    recovered, _, _ = await one_off(message, [HANG, Receipt("200", "ok")], send_timeout=0.05)
    assert (recovered.status, recovered.attempts) == (Status.DELIVERED, 2)
    outcome, _, _ = await one_off(message, [HANG] * ONE_OFF.attempts, send_timeout=0.05)
    assert (outcome.status, outcome.code, outcome.attempts) == (Status.DEAD, "error", 4)
    assert outcome.answer == "no outcome within 0.05 s (the send was abandoned)"


def test_a_scheduled_delivery_is_tried_eight_times() -> None:
    busy = failure(status=503)
    assert all(SCHEDULED.next_wait(n, busy) is not None for n in range(1, 8))
    assert SCHEDULED.next_wait(8, busy) is None
    dead = SCHEDULED.after_failure(busy, attempt=8, parts=0, now=NOW, code=None)
    assert (dead.status, dead.attempts) == (Status.DEAD, 8)


def test_the_default_waits_reach_but_never_pass_each_step() -> None:
    for attempt, full in enumerate([30, 120, 480, 1920, 7680, 28800, 28800], 1):
        waits = [SCHEDULED.delay(attempt) for _ in range(20000)]
        assert full / 2 <= min(waits) < full * 0.501, attempt
        assert full * 0.999 < max(waits) <= full, attempt
