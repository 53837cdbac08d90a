"""Outputs that call a platform's HTTP API once per part of a message (Telegram, Matrix,
Google Chat, ntfy, Zulip).

``ApiOutput.send`` does what they share: the parts, computed once per message; each part
sent in order through the guarded client; the platform's own error answers read first,
then the bot's status rules (``network.classify``); a failed part recorded so that a retry
resumes there; the target's secrets kept out of every error and answer.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from bot.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from bot.outputs.base import Envelope, Message, Output, Receipt, Target
from bot.outputs.network import answer_of, classify, retry_after, send_request
from bot.redact import mask_secret

JSON_TYPE = {"content-type": "application/json"}
SHORTEST_HIDDEN = 6  # a shorter "secret" would hide ordinary words from every message


@dataclass(frozen=True)
class Call:
    """One HTTP request of a delivery."""

    method: str
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def answer_json(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or an empty one (a proxy's HTML error page, say)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def hide(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (as written or percent-encoded) shown masked."""
    for secret in sorted({s for s in secrets if len(s) >= SHORTEST_HIDDEN}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, mask_secret(secret))
    return text


def refused(
    response: httpx.Response, reason: str, *, retry_in: float | None = None, gone: bool = False
) -> DeliveryError:
    """The delivery error for a non-2xx answer under the bot's rules (408, 429 and 5xx
    retryable, the rest permanent), with the platform's own reason and wait."""
    status = response.status_code
    if status in (408, 429) or status >= 500:
        wait = retry_in if retry_in is not None else retry_after(response)
        return RetryableDeliveryError(reason, status=status, retry_after=wait)
    return PermanentDeliveryError(reason, status=status, gone=gone or status == 410)


class ApiOutput(Output):
    """An output that sends each part of a message as one call to a platform's API."""

    formats: ClassVar[tuple[str, ...]] = ("chat",)
    hosts: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def parts(self, message: Message) -> Sequence[Any]:
        """What to send, one item a call, in order (the same for every target)."""

    @abstractmethod
    def payload(self, part: Any) -> dict[str, Any]:
        """What the request for ``part`` carries, but for the target's own fields."""

    @abstractmethod
    def call(self, target: Target, part: Any, *, index: int, envelope: Envelope) -> Call:
        """The request that sends ``part`` (number ``index``) to ``target``."""

    def payloads(self, message: Message) -> list[dict[str, Any]]:
        """Each part's payload, for ``briefing preview`` (as ``WebhookOutput.payloads``)."""
        return [self.payload(part) for part in self.parts(message)]

    def refusal(self, response: httpx.Response) -> DeliveryError | None:
        """The error a platform's non-2xx answer means, when its own answer says more than
        its status (a retry-after in the body, a bot removed from a chat); None to apply
        the bot's status rules."""
        return None

    def secrets(self, target: Target) -> tuple[str, ...]:
        """What must never be shown of ``target``: its secrets, and tokens in its address."""
        return target.secrets

    async def send(self, target: Target, message: Message, *, envelope: Envelope) -> Receipt:
        parts: Sequence[Any] = message.memo.get(self.name) or message.memo.setdefault(
            self.name, self.parts(message)
        )
        response = None
        for index in range(envelope.first_part, len(parts)):
            call = self.call(target, parts[index], index=index, envelope=envelope)
            try:
                response = await send_request(
                    self.context.http,
                    call.method,
                    call.url,
                    call.body,
                    headers=call.headers,
                    total_timeout=self.context.limits.total_timeout,
                )
                if not response.is_success:
                    error = self.refusal(response) if response.status_code >= 400 else None
                    if error is not None:
                        raise error
                    classify(response)
            except DeliveryError as exc:
                exc.parts_done = index
                exc.reason = hide(exc.reason, self.secrets(target))
                exc.args = (exc.reason,)
                raise
        if response is None:
            return Receipt(status="nothing to send", parts=0)
        answer = hide(answer_of(response), self.secrets(target))
        return Receipt(status=str(response.status_code), answer=answer, parts=len(parts))
