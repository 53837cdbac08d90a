"""Sending: once to any target (``send --to``, a subscription's test message), or queueing
a manual delivery for subscriptions through the outbox, as the scheduler does."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.delivery import deliver, render_message
from bot.digest import Digest, DigestRenderer
from bot.errors import ConfigError
from bot.operations.deliveries import numeric
from bot.operations.subscriptions import find
from bot.outputs import Envelope, Target, infer_kind, make_context, output_class
from bot.outputs.webhooks import new_secret
from bot.redact import mask_target, scrub
from bot.settings import Settings
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database

Clock = Callable[[], datetime]


async def send_once(
    settings: Settings,
    renderer: DigestRenderer,
    address: str,
    *,
    kind: str | None,
    secrets: tuple[str, ...],
    digest: Digest,
    dry_run: bool,
    clock: Clock,
) -> dict[str, Any]:
    """Check the target, render ``digest`` for it and send it (with the one-off retries):
    the outcome with the receiver's status and answer, secrets masked. A generic webhook
    without a secret gets a new one (``new_secret``, to be shown once)."""
    name = kind or infer_kind(address)
    output_cls = output_class(name)
    context = make_context(settings)
    output = output_cls(context)
    new = None
    if name == "generic" and not secrets:
        new = new_secret()
        secrets = (new,)
    try:
        target = await output.validate(Target(kind=name, address=address, secrets=secrets))
        message = render_message(renderer, digest, output_cls)
        result: dict[str, Any] = {
            "kind": name,
            "target": mask_target(target.address),
            "new_secret": new,
        }
        if dry_run:
            return {
                **result, "ok": True, "dry_run": True,
                "result": "dry run: target valid, message "
                f"rendered ({', '.join(output_cls.formats)}), nothing sent",
            }  # fmt: skip
        outcome = await deliver(
            output, target, message, envelope=Envelope(f"oneoff_{uuid.uuid4().hex}"),
            send_timeout=settings.send_timeout.total_seconds(), clock=clock,
        )  # fmt: skip
    finally:
        await output.aclose()
        await context.aclose()
    answer = scrub(outcome.answer, "", target.secrets)
    verdict = "delivered" if outcome.ok else "FAILED"
    return {
        **result, "ok": outcome.ok, "status": numeric(outcome.code), "answer": answer,
        "attempts": outcome.attempts, "parts": outcome.parts,
        "result": f"{verdict} — status {outcome.code} after {outcome.attempts} attempt(s)"
        + (f", {outcome.parts} part(s)" if outcome.parts > 1 else "")
        + (f"; answer: {answer}" if answer else ""),
    }  # fmt: skip


@dataclass(frozen=True)
class SendPlan:
    """The subscriptions a manual send goes to (none chosen: every active one) and their
    outputs."""

    chosen: list[subs.Subscription]
    kinds: set[str]


async def plan_send(db: Database, ids: Sequence[int], *, force: bool) -> SendPlan:
    """Check a manual send to ``ids`` (empty: every active subscription): each exists, none
    is paused unless ``force``, and there is someone to send to."""
    chosen = [await find(db, i) for i in ids]
    paused = [s for s in chosen if s.status == subs.PAUSED]
    if paused and not force:
        raise ConfigError(
            "; ".join(f"subscription {s.id} is paused ({s.paused_reason})" for s in paused)
            + f"; resume it with 'briefing subscriptions resume {paused[0].id}', "
            "or send to it all the same with --force"
        )
    kinds = {s.kind for s in chosen} if ids else await subs.kinds(db)
    if not kinds:
        raise ConfigError("no active subscriptions to send to")
    return SendPlan(chosen, kinds)


async def queue_send(
    db: Database, ids: Sequence[int], *, clock: Clock, force: bool
) -> tuple[datetime, list[int]]:
    """Queue a manual delivery now for ``ids`` (empty: every active subscription), to paused
    ones only with ``force``: the period they share and the new rows' ids."""
    now = clock()
    return now, await outbox.queue_manual(
        db, now=now, subscription_ids=list(ids) or None, force=force
    )
