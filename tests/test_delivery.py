from __future__ import annotations

import pytest

from bot.delivery import ONE_OFF, RetryPolicy


def test_default_schedule_spans_most_of_a_day() -> None:
    policy = RetryPolicy()
    waits = [policy.delay(n) for n in range(1, policy.attempts)]
    expected = [30, 120, 480, 1920, 7680, 28800, 28800]
    assert all(full / 2 <= wait <= full for wait, full in zip(waits, expected, strict=True))
    lowest, highest = sum(expected) / 2, sum(expected)
    assert lowest > 9 * 3600 and highest < 20 * 3600


def test_retry_after_is_honoured_and_jitter_varies() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, retry_after=900) == 900
    assert len({round(policy.delay(3), 6) for _ in range(20)}) > 1
    assert ONE_OFF.delay(3) <= 4


def test_a_policy_needs_an_attempt() -> None:
    with pytest.raises(ValueError, match="at least one attempt"):
        RetryPolicy(attempts=0)


def test_next_wait_says_when_to_give_up() -> None:
    from bot.errors import PermanentDeliveryError, RetryableDeliveryError

    policy = RetryPolicy(attempts=3, max_wait=3600)
    busy = RetryableDeliveryError("HTTP 503")
    assert 15 <= (policy.next_wait(1, busy) or 0) <= 30
    assert policy.next_wait(3, busy) is None  # that was the last attempt
    assert policy.next_wait(1, PermanentDeliveryError("HTTP 400")) is None
    assert policy.next_wait(1, RetryableDeliveryError("HTTP 429", retry_after=7200)) is None
    assert policy.next_wait(1, RetryableDeliveryError("HTTP 429", retry_after=600)) == 600
