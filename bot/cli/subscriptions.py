"""``briefing subscribe …``, ``briefing subscriptions …`` and ``briefing deliveries``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from bot.cli.common import (
    check_ids,
    emit,
    fail,
    not_empty,
    settings,
    shown,
    table,
    with_database,
)
from bot.delivery import Status
from bot.errors import ConfigError
from bot.operations import deliveries as log
from bot.operations import subscriptions as ops
from bot.outputs import infer_kind
from bot.service import utc_now
from bot.settings import parse_duration
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database

subscribe_app = typer.Typer(help="Subscribe a webhook or an email address.", no_args_is_help=True)
subscriptions_app = typer.Typer(help="List and manage subscriptions.", no_args_is_help=True)

Topics = Annotated[
    str | None,
    typer.Option(metavar="A,B", help="Comma-separated topics (default: all).", callback=not_empty),
]
Locale = Annotated[
    str | None,
    typer.Option(
        metavar="fr|en", help="Language (default: BRIEFING_DEFAULT_LOCALE).", callback=not_empty
    ),
]
Timezone = Annotated[
    str | None,
    typer.Option(
        metavar="IANA",
        help="Timezone of the schedule and dates (default: BRIEFING_DEFAULT_TIMEZONE).",
        callback=not_empty,
    ),
]
At = Annotated[
    str | None,
    typer.Option(metavar="HH:MM", help="Daily at this time (default: 07:00).", callback=not_empty),
]
Cron = Annotated[
    str | None,
    typer.Option(
        metavar="'M H DOM MON DOW'",
        help='A crontab schedule instead of --at, e.g. "0 7 * * 1-5" (default: daily, --at).',
        callback=not_empty,
    ),
]
Name = Annotated[
    str | None,
    typer.Option(
        metavar="TEXT",
        help="A name to recognise it by (default: from the target).",
        callback=not_empty,
    ),
]


def unchanged(metavar: str, purpose: str) -> Any:
    """An option of ``subscriptions update``: left out, the value stays as it is."""
    return typer.Option(
        metavar=metavar, help=f"{purpose} (default: unchanged).", callback=not_empty
    )


SkipEmpty = Annotated[
    bool, typer.Option("--skip-empty", help="Send nothing when nothing is new (default: send).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Id = Annotated[int, typer.Argument(metavar="ID", help="The subscription's id.", callback=check_ids)]


@subscribe_app.command("webhook")
def subscribe_webhook(
    url: Annotated[
        str, typer.Argument(metavar="URL", help="The webhook URL (https).", callback=not_empty)
    ],
    kind: Annotated[
        str | None,
        typer.Option(
            metavar="KIND",
            help="An output kind, as 'briefing outputs' lists them (default: from the URL).",
            callback=not_empty,
        ),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            metavar="WHSEC",
            help="Signing secret whsec_… for generic webhooks, repeatable (default: a new one).",
            callback=not_empty,
        ),
    ] = None,
    topics: Topics = None,
    locale: Locale = None,
    timezone: Timezone = None,
    at: At = None,
    cron: Cron = None,
    name: Name = None,
    skip_empty: SkipEmpty = False,
    as_json: AsJson = False,
) -> None:
    """Subscribe a webhook (Slack, Discord, Teams, Mattermost or signed generic JSON)."""
    kind = kind or infer_kind(url)
    if kind == "email":
        fail("use 'briefing subscribe email ADDRESS' for email")
    create(
        kind,
        url,
        tuple(secret or ()),
        topics=topics,
        locale=locale,
        timezone=timezone,
        at=at,
        cron=cron,
        name=name,
        skip_empty=skip_empty,
        as_json=as_json,
        generated=None,
    )


@subscribe_app.command("email")
def subscribe_email(
    address: Annotated[
        str, typer.Argument(metavar="ADDRESS", help="The email address.", callback=not_empty)
    ],
    topics: Topics = None,
    locale: Locale = None,
    timezone: Timezone = None,
    at: At = None,
    cron: Cron = None,
    name: Name = None,
    skip_empty: SkipEmpty = False,
    as_json: AsJson = False,
) -> None:
    """Subscribe an email address."""
    create(
        "email",
        address,
        (),
        topics=topics,
        locale=locale,
        timezone=timezone,
        at=at,
        cron=cron,
        name=name,
        skip_empty=skip_empty,
        as_json=as_json,
        generated=None,
    )


def create(
    kind: str,
    address: str,
    secrets: tuple[str, ...],
    *,
    topics: str | None,
    locale: str | None,
    timezone: str | None,
    at: str | None,
    cron: str | None,
    name: str | None,
    skip_empty: bool,
    as_json: bool,
    generated: str | None,
) -> None:
    wanted = ops.Wanted(
        kind=kind, address=address, secrets=secrets, topics=topics, locale=locale,
        timezone=timezone, at=at, cron=cron, name=name, skip_empty=skip_empty,
    )  # fmt: skip
    made = with_database(lambda db: ops.create(db, settings(), wanted, clock=utc_now))
    sub = made.subscription
    data = describe(sub)
    lines = [
        f"subscription {sub.id} created: {sub.kind} → {shown(data['target'])}, {schedule_text(sub)}",
        f"next digest: {data['next_text']}",
    ]
    if made.new_secret:
        data["secret"] = made.new_secret
        lines.append(
            f"signing secret (shown once, keep it to verify signatures): {made.new_secret}"
        )
    emit(data, as_json=as_json, text="\n".join(lines))


def schedule_text(sub: subs.Subscription) -> str:
    return f"cron '{sub.cron}' in {sub.timezone}"


def describe(sub: subs.Subscription) -> dict[str, Any]:
    """A subscription as shown to people and in JSON (``ops.describe``)."""
    return ops.describe(sub).model_dump()


def utc_text(iso: str) -> str:
    return ops.utc_text(datetime.fromisoformat(iso))


def status_text(data: dict[str, Any]) -> str:
    """``active``, or ``paused since 2025-12-02 09:00 UTC: holiday``."""
    if data["status"] == subs.ACTIVE:
        return str(data["status"])
    return f"{data['status']} since {utc_text(data['updated_at'])}: {shown(data['reason'])}"


find = ops.find


@subscriptions_app.command("list")
def subscriptions_list(
    everything: Annotated[
        bool, typer.Option("--all", help="Removed subscriptions too (default: active and paused).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """List subscriptions (secrets and tokens masked)."""
    statuses = (
        (subs.ACTIVE, subs.PAUSED, subs.REMOVED) if everything else (subs.ACTIVE, subs.PAUSED)
    )
    found = [describe(s) for s in with_database(lambda db: ops.listing(db, statuses=statuses))]
    rows = [
        [d["id"], d["name"], d["kind"], d["target"], shown(d["topics"] or "all"), d["locale"],
         d["cron"], d["timezone"], d["status"],
         d["next_text"] if d["status"] == subs.ACTIVE else "—",
         "" if d["status"] == subs.ACTIVE else utc_text(d["updated_at"]),
         shown(d["reason"]) if d["reason"] else ""]
        for d in found
    ]  # fmt: skip
    text = table(
        ["id", "name", "kind", "target", "topics", "locale", "cron", "timezone", "status", "next",
         "since", "reason"],
        rows,
    )  # fmt: skip
    emit(
        found,
        as_json=as_json,
        text=text if found else "no subscriptions (add one with 'briefing subscribe')",
    )


SHOWN_FIELDS = {
    "id": "id", "name": "name", "kind": "kind", "target": "target", "secrets": "secrets",
    "topics": "topics", "locale": "locale", "timezone": "timezone", "cron": "cron",
    "skip_empty": "skip empty digests", "next_text": "next", "created_at": "created",
}  # fmt: skip


@subscriptions_app.command("show")
def subscriptions_show(subscription_id: Id, as_json: AsJson = False) -> None:
    """Show one subscription (removed ones too) and its latest deliveries."""

    async def work(db: Database) -> dict[str, Any]:
        sub = await find(db, subscription_id, removed=True)
        recent = await log.listing(db, subscription_id=subscription_id, limit=10)
        return {**describe(sub), "deliveries": [d.model_dump() for d in recent]}

    data = with_database(work)
    values = {**data, "topics": data["topics"] or "all", "created_at": utc_text(data["created_at"])}
    lines = [f"{label}: {shown(values[key])}" for key, label in SHOWN_FIELDS.items()]
    lines.insert(len(lines) - 2, f"status: {status_text(data)}")
    text = "\n".join(lines)
    if data["deliveries"]:
        text += "\n\n" + deliveries_table(data["deliveries"])
    emit(data, as_json=as_json, text=text)


def change_status(subscription_id: int, status: str, reason: str | None, as_json: bool) -> None:
    sub = with_database(
        lambda db: ops.change_status(db, subscription_id, status, reason=reason, clock=utc_now)
    )
    data = describe(sub)
    emit(
        data,
        as_json=as_json,
        text=f"subscription {sub.id} is now {sub.status}"
        + (f" (next digest: {data['next_text']})" if data["next"] else ""),
    )


@subscriptions_app.command("update")
def subscriptions_update(
    subscription_id: Id,
    topics: Annotated[str | None, unchanged("A,B", "Comma-separated topics, or 'all'")] = None,
    locale: Annotated[str | None, unchanged("fr|en", "Language")] = None,
    timezone: Annotated[str | None, unchanged("IANA", "Timezone of the schedule and dates")] = None,
    at: Annotated[str | None, unchanged("HH:MM", "Daily at this time")] = None,
    cron: Annotated[
        str | None,
        unchanged("'M H DOM MON DOW'", 'A crontab schedule instead of --at, e.g. "0 7 * * 1-5"'),
    ] = None,
    name: Annotated[str | None, unchanged("TEXT", "A name to recognise it by")] = None,
    skip_empty: Annotated[
        bool | None,
        typer.Option(
            "--skip-empty/--send-empty",
            help="Skip empty digests or send them (default: unchanged).",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Change a subscription's topics, language, timezone, schedule or name.

    A new schedule applies from its next period, without restarting the bot; options left
    out keep their values.
    """
    change = ops.Change(
        topics=topics, locale=locale, timezone=timezone, at=at, cron=cron, name=name,
        skip_empty=skip_empty,
    )  # fmt: skip

    async def work(db: Database) -> subs.Subscription:
        return await ops.update(db, settings(), subscription_id, change, clock=utc_now)

    sub = with_database(work)
    data = describe(sub)
    emit(
        data,
        as_json=as_json,
        text=f"subscription {sub.id} updated: {schedule_text(sub)}, "
        f"topics {','.join(sub.topics or ()) or 'all'}, {sub.locale}; next digest: {data['next_text']}",
    )


@subscriptions_app.command("pause")
def subscriptions_pause(
    subscription_id: Id,
    reason: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT", help="Why (default: paused by an operator).", callback=not_empty
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Stop sending to a subscription until it is resumed."""
    change_status(subscription_id, subs.PAUSED, reason or ops.PAUSED_BY_OPERATOR, as_json)


@subscriptions_app.command("resume")
def subscriptions_resume(subscription_id: Id, as_json: AsJson = False) -> None:
    """Resume a paused subscription from its next period (missed ones are not sent)."""
    change_status(subscription_id, subs.ACTIVE, None, as_json)


@subscriptions_app.command("remove")
def subscriptions_remove(subscription_id: Id, as_json: AsJson = False) -> None:
    """Remove a subscription (it stays listed with --all; its delivery log is kept)."""
    change_status(subscription_id, subs.REMOVED, ops.REMOVED_BY_OPERATOR, as_json)


def delivery_view(d: outbox.Delivery) -> dict[str, Any]:
    """A delivery as JSON (``log.delivery_view``)."""
    return log.delivery_view(d).model_dump()


def deliveries_table(views: list[dict[str, Any]]) -> str:
    def short(text: str) -> str:
        return text if len(text) <= 60 else text[:59] + "…"

    return table(
        ["id", "sub", "period", "trigger", "status", "tries", "answer", "next try"],
        [[v["id"], v["subscription"], v["period"][:16], v["trigger"], v["status"], v["attempts"],
          short(" ".join(str(x) for x in (v["last_status"], v["answer"]) if x)), (v["next_attempt_at"] or "")[:19]]
         for v in views],
    )  # fmt: skip


def deliveries(
    subscription: Annotated[
        int | None,
        typer.Option(
            metavar="ID", help="Only this subscription (default: all).", callback=check_ids
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            metavar="STATUS",
            help=f"Only this status: {', '.join(Status)} (default: any).",
            callback=not_empty,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(metavar="N", help="How many, newest first.", min=1, max=1_000_000)
    ] = 50,
    as_json: AsJson = False,
) -> None:
    """The delivery log (and the queue), newest first."""
    if status is not None and status not in list(Status):
        raise ConfigError(f"unknown status {status!r} (known: {', '.join(Status)})")
    chosen = Status(status) if status is not None else None
    found = with_database(
        lambda db: log.listing(db, subscription_id=subscription, status=chosen, limit=limit)
    )
    views = [d.model_dump() for d in found]
    emit(views, as_json=as_json, text=deliveries_table(views) if views else "no deliveries")


def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Delete finished deliveries whose period is older than this (90d, 12h, …).",
        ),
    ] = "90d",
    as_json: AsJson = False,
) -> None:
    """Delete old finished deliveries from the log; keep each subscription's latest
    delivered one (its next digest starts there) and everything still queued."""
    try:
        age = parse_duration(older_than)
        before = utc_now() - age if isinstance(age, timedelta) and age > timedelta(0) else None
    except OverflowError:
        raise ConfigError(f"--older-than: {older_than!r} goes back further than dates do") from None
    if before is None:
        raise ConfigError(f"--older-than: {older_than!r} is not a duration such as 90d or 12h")
    removed = with_database(lambda db: outbox.prune(db, before=before))
    emit(
        {"deleted": removed, "before": before.isoformat()},
        as_json=as_json,
        text=f"deleted {removed} finished deliveries from before {before:%Y-%m-%d %H:%M} UTC",
    )
