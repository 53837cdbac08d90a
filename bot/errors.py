"""The one error tree of the bot.

Library errors are translated at the boundary (``raise … from exc``) into one of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class BriefingError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(BriefingError):
    """Bad settings or options: an unknown topic, locale, format or timezone."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a state file, located at ``file:line``."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class StateError(BriefingError):
    """The briefing state could not be loaded; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class EditConflict(BriefingError):
    """An edit of the state was refused so as not to undo or overwrite another one: the
    item changed since the editor's ``--expect-revision``, or an import would undo edits."""


class DeliveryError(BriefingError):
    """A message could not be delivered.

    ``parts_done`` counts the parts of a split message that did go through, so a retry
    can resume after them.
    """

    def __init__(
        self, reason: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.parts_done = 0


class RetryableDeliveryError(DeliveryError):
    """A delivery failed in a way that may succeed later (timeouts, 5xx, 429, SMTP 4xx)."""


class PermanentDeliveryError(DeliveryError):
    """A delivery failed for good (4xx, SMTP 5xx, refused target).

    ``gone`` is set when the receiver said the target no longer exists (HTTP 410), which
    disables the subscription.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        gone: bool = False,
    ) -> None:
        super().__init__(reason, status=status, retry_after=retry_after)
        self.gone = gone


class TargetError(ConfigError):
    """A delivery target (URL, address) is invalid or not allowed."""
