"""``briefing send``: a one-off send to any target, or subscriptions through the outbox."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime
from typing import Annotated, Any

import typer

from bot.cli.common import (
    check_ids,
    emit,
    err_console,
    escaped,
    fail,
    not_empty,
    renderer,
    settings,
    setup_logging,
    table,
    with_stored,
)
from bot.cli.outputs import from_environment
from bot.cli.subscriptions import deliveries_table
from bot.delivery import Status
from bot.operations import deliveries as log
from bot.operations import preview as preview_ops
from bot.operations import sending
from bot.outputs import make_context
from bot.redact import mask_target
from bot.service import open_database, utc_now
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database
from bot.worker import Worker, send_and_wait


def send(
    to: Annotated[
        str | None,
        typer.Option(
            metavar="TARGET",
            help="Send once to this target (a webhook or chat platform URL, a Telegram "
            "@channel, an Apprise URL or an email address), without a subscription (give one "
            "of --to, --subscription or --all).",
            callback=not_empty,
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            metavar="KIND",
            help="An output kind, as 'briefing outputs' lists them (default: from --to).",
            callback=not_empty,
        ),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            metavar="WHSEC",
            help="Signing secret whsec_… for a generic webhook, repeatable (default: a new one).",
            callback=not_empty,
        ),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            metavar="VAR",
            help="Environment variable holding the target's token or key (telegram, matrix, "
            "ntfy, zulip), with --to (default: none).",
            callback=not_empty,
        ),
    ] = None,
    subscription: Annotated[
        list[int] | None,
        typer.Option(
            metavar="ID",
            help="Send to this subscription now, repeatable (give one of --to, --subscription "
            "or --all).",
            callback=check_ids,
        ),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Send to every active subscription now.")
    ] = False,
    topics: Annotated[
        str | None,
        typer.Option(
            metavar="A,B",
            help="Comma-separated topics, with --to (default: all).",
            callback=not_empty,
        ),
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option(
            metavar="fr|en",
            help="Language, with --to (default: BRIEFING_DEFAULT_LOCALE).",
            callback=not_empty,
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            metavar="IANA",
            help="The reader's timezone, with --to (default: BRIEFING_DEFAULT_TIMEZONE).",
            callback=not_empty,
        ),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            metavar="ISO", help="Fix the clock, with --to (default: now).", callback=not_empty
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check targets and render, send nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Send to a paused subscription all the same.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Send the digest now, once or through the outbox.

    Sends once to --to, or to subscriptions (--subscription, --all) through the outbox as
    'briefing run' does. Exits 1 if any delivery failed.
    """
    if sum(bool(x) for x in (to, subscription, all_)) != 1:
        fail("give exactly one of --to, --subscription or --all")
    once_only = {"--kind": kind, "--secret": secret, "--token-env": token_env, "--topics": topics,
                 "--locale": locale, "--timezone": timezone, "--now": now}  # fmt: skip
    if not to and (given := [name for name, value in once_only.items() if value]):
        fail(f"{', '.join(given)}: only with --to (a subscription is sent as it is set up)")
    setup_logging(level=logging.WARNING)  # problems only, printed above the progress bar
    if to:
        check_target(to, kind)
        secrets = tuple(secret or ())
        if token_env:
            secrets += (from_environment(token_env, "--token-env", "the target's token or key"),)
        reader = preview_ops.Reader(topics=topics, locale=locale, timezone=timezone, now=now)

        async def once(db: Database | None) -> dict[str, Any]:
            return await sending.send_once(
                settings(), renderer(), to, kind=kind, secrets=secrets,
                digest=await preview_ops.digest_for(db, settings(), reader), dry_run=dry_run,
                clock=utc_now,
            )  # fmt: skip

        outcome = with_stored(once)
        lines = [f"{outcome['kind']} → {escaped(outcome['target'])}: {escaped(outcome['result'])}"]
        if outcome.get("new_secret"):
            lines.append(f"signing secret (shown once, keep it): {outcome['new_secret']}")
        emit(outcome, as_json=as_json, text="\n".join(lines))
        ok = bool(outcome["ok"])
    else:
        ok = asyncio.run(
            through_outbox(subscription or [], dry_run=dry_run, force=force, as_json=as_json)
        )
    if not ok:
        raise typer.Exit(1)


def check_target(address: str, kind: str | None) -> None:
    """A one-off target is a URL (with a scheme) or an email address (with an @)."""
    if kind is None and "://" not in address and "@" not in address:
        fail(
            f"--to {mask_target(address)!r}: neither a webhook URL (https://…) nor an email "
            "address (name@example.org)"
        )


TABLE_ROWS = 50
FAILED = (Status.PENDING, Status.SENDING, Status.DEAD)


async def through_outbox(ids: list[int], *, dry_run: bool, force: bool, as_json: bool) -> bool:
    """Queue a manual delivery for each subscription and send them in this process."""
    config = settings()
    db = await open_database(config)
    context = make_context(config)
    worker = Worker(
        db,
        context,
        renderer=renderer(),
        clock=utc_now,
        concurrency=config.concurrency,
        send_timeout=config.send_timeout.total_seconds(),
        stale_after=config.stale_after,
    )
    try:
        checked = await sending.plan_send(db, ids, force=force)
        chosen = checked.chosen
        await worker.check(checked.kinds)
        if dry_run:
            plan = [
                {
                    "subscription": s.id,
                    "kind": s.kind,
                    "target": mask_target(s.address),
                    "status": s.status,
                }
                for s in chosen or await subs.list_all(db, statuses=(subs.ACTIVE,))
            ]
            emit(
                plan,
                as_json=as_json,
                text=f"dry run: would send to {len(plan)} subscription(s)\n"
                + table(["sub", "kind", "target", "status"], [list(p.values()) for p in plan]),
            )
            return True
        now, row_ids = await sending.queue_send(db, ids, clock=utc_now, force=force)
        await run_with_progress(worker, row_ids, now)
        everything = as_json or len(row_ids) <= TABLE_ROWS
        found = await log.listing(
            db,
            period=now,
            statuses=None if everything else FAILED,
            limit=len(row_ids) if everything else TABLE_ROWS,
        )
        views = [d.model_dump() for d in found]
        counts = await outbox.counts(db, period=now)
    finally:
        await worker.close()
        await context.aclose()
        await db.close()
    failed = sum(n for status, n in counts.items() if status in FAILED)
    summary = f"{len(row_ids) - failed} of {len(row_ids)} delivered or skipped; {failed} failed" + (
        " (pending ones stay queued for 'briefing run')" if failed else ""
    )
    text = deliveries_table(sorted(views, key=lambda v: v["subscription"])) + "\n" if views else ""
    if not everything:
        text += "by status: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) + "\n"
    emit({"deliveries": views, "failed": failed}, as_json=as_json, text=text + summary)
    return failed == 0


async def run_with_progress(worker: Worker, row_ids: list[int], period: datetime) -> None:
    if not sys.stderr.isatty():
        await send_and_wait(worker, row_ids, period=period)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "sending",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=err_console(),
    ) as progress:
        task = progress.add_task("send", total=len(row_ids))
        await send_and_wait(
            worker, row_ids, period=period, progress=lambda n: progress.advance(task, n)
        )
