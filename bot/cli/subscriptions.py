"""``briefing subscribe …``, ``briefing subscriptions …`` and ``briefing deliveries``."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from bot.cli.common import (
    emit,
    fail,
    load_current_state,
    parse_topics,
    settings,
    table,
    with_database,
)
from bot.delivery import Status
from bot.digest.compose import ReaderOptions, check_options
from bot.errors import ConfigError
from bot.outputs import Target, infer_kind, make_context, output_class
from bot.outputs.webhooks import new_secret
from bot.redact import mask_secret, mask_target
from bot.schedule import next_fire, schedule_from, trigger_for
from bot.service import utc_now
from bot.store import outbox
from bot.store import subscriptions as subs
from bot.store.database import Database

subscribe_app = typer.Typer(help="Subscribe a webhook or an email address.", no_args_is_help=True)
subscriptions_app = typer.Typer(help="List and manage subscriptions.", no_args_is_help=True)

Topics = Annotated[str | None, typer.Option(help="Comma-separated topics (default: all).")]
Locale = Annotated[str | None, typer.Option(help="fr or en (default BRIEFING_DEFAULT_LOCALE).")]
Timezone = Annotated[str | None, typer.Option(help="IANA timezone of the schedule and dates.")]
At = Annotated[str | None, typer.Option(help="Daily at HH:MM (default 07:00).")]
Cron = Annotated[str | None, typer.Option(help='A crontab schedule, e.g. "0 7 * * 1-5".')]
Name = Annotated[str | None, typer.Option(help="A name to recognise it by.")]
SkipEmpty = Annotated[bool, typer.Option("--skip-empty", help="Send nothing when nothing is new.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@subscribe_app.command("webhook")
def subscribe_webhook(
    url: Annotated[str, typer.Argument(help="The webhook URL.")],
    kind: Annotated[
        str | None, typer.Option(help="generic, slack, discord, teams or mattermost (inferred).")
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(help="Signing secret whsec_… (generic; generated if absent)."),
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
    secrets = tuple(secret or ())
    generated = None
    if kind == "generic" and not secrets:
        generated = new_secret()
        secrets = (generated,)
    create(
        kind,
        url,
        secrets,
        topics=topics,
        locale=locale,
        timezone=timezone,
        at=at,
        cron=cron,
        name=name,
        skip_empty=skip_empty,
        as_json=as_json,
        generated=generated,
    )


@subscribe_app.command("email")
def subscribe_email(
    address: Annotated[str, typer.Argument(help="The email address.")],
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
    config = settings()
    zone = timezone or config.default_timezone
    crontab = schedule_from(at=at, cron=cron)
    chosen = checked_options(topics, locale or config.default_locale, zone, crontab)
    target = asyncio.run(validated(kind, address, secrets))
    now = utc_now()
    new = subs.NewSubscription(
        name=name or mask_target(target.address),
        kind=kind,
        address=target.address,
        secrets=target.secrets,
        topics=chosen,
        locale=locale or config.default_locale,
        timezone=zone,
        cron=crontab,
        skip_empty=skip_empty,
        next_fire_at=next_fire(crontab, zone, after=now),
    )
    sub = with_database(lambda db: subs.add(db, new, now=now))
    data = describe(sub)
    lines = [
        f"subscription {sub.id} created: {sub.kind} → {data['target']}, {schedule_text(sub)}",
        f"next digest: {data['next'] or 'never'}",
    ]
    if generated:
        data["secret"] = generated
        lines.append(f"signing secret (shown once, keep it to verify signatures): {generated}")
    emit(data, as_json=as_json, text="\n".join(lines))


def checked_options(
    topics: str | None, locale: str, zone: str, crontab: str
) -> tuple[str, ...] | None:
    """Check topics, locale, timezone and schedule together; return the topics chosen
    (None for all)."""
    trigger_for(crontab, zone)
    chosen = parse_topics(topics) if topics != "all" else None
    check_options(load_current_state(), ReaderOptions(topics=chosen, locale=locale, timezone=zone))
    return chosen


async def validated(kind: str, address: str, secrets: tuple[str, ...]) -> Target:
    context = make_context(settings())
    output = output_class(kind)(context)
    try:
        return await output.validate(Target(kind=kind, address=address, secrets=secrets))
    finally:
        await output.aclose()
        await context.aclose()


def schedule_text(sub: subs.Subscription) -> str:
    return f"cron '{sub.cron}' in {sub.timezone}"


def local(moment: datetime | None, zone: str) -> str | None:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") if moment else None


def describe(sub: subs.Subscription) -> dict[str, Any]:
    """A subscription as shown to people: secrets and token-bearing URLs masked."""
    return {
        "id": sub.id, "name": sub.name, "kind": sub.kind, "target": mask_target(sub.address),
        "secrets": [mask_secret(s) for s in sub.secrets], "topics": list(sub.topics or []) or "all",
        "locale": sub.locale, "timezone": sub.timezone, "cron": sub.cron,
        "skip_empty": sub.skip_empty, "status": sub.status, "paused_reason": sub.paused_reason,
        "next": local(sub.next_fire_at, sub.timezone) if sub.status == subs.ACTIVE else None,
        "created_at": sub.created_at.isoformat(),
    }  # fmt: skip


@subscriptions_app.command("list")
def subscriptions_list(as_json: AsJson = False) -> None:
    """List subscriptions (secrets and tokens masked)."""
    found = [describe(s) for s in with_database(subs.list_all)]
    rows = [[d["id"], d["name"], d["kind"], d["target"], ",".join(d["topics"]) if d["topics"] != "all" else "all",
             d["locale"], d["cron"], d["timezone"], d["status"], d["next"] or d["paused_reason"] or ""]
            for d in found]  # fmt: skip
    text = table(
        ["id", "name", "kind", "target", "topics", "locale", "cron", "timezone", "status", "next"],
        rows,
    )
    emit(
        found,
        as_json=as_json,
        text=text if found else "no subscriptions (add one with 'briefing subscribe')",
    )


@subscriptions_app.command("show")
def subscriptions_show(
    subscription_id: Annotated[int, typer.Argument(metavar="ID")], as_json: AsJson = False
) -> None:
    """Show one subscription and its latest deliveries."""

    async def work(db: Database) -> dict[str, Any]:
        sub = await subs.get(db, subscription_id)
        recent = await outbox.listing(db, subscription_id=subscription_id, limit=10)
        return {**describe(sub), "deliveries": [delivery_view(d) for d in recent]}

    data = with_database(work)
    text = "\n".join(f"{k}: {v}" for k, v in data.items() if k != "deliveries")
    if data["deliveries"]:
        text += "\n\n" + deliveries_table(data["deliveries"])
    emit(data, as_json=as_json, text=text)


def change_status(subscription_id: int, status: str, reason: str | None, as_json: bool) -> None:
    async def work(db: Database) -> subs.Subscription:
        sub = await subs.get(db, subscription_id)
        now = utc_now()
        upcoming = next_fire(sub.cron, sub.timezone, after=now) if status == subs.ACTIVE else None
        return await subs.set_status(
            db, subscription_id, status, now=now, reason=reason, next_fire_at=upcoming
        )

    sub = with_database(work)
    data = describe(sub)
    emit(
        data,
        as_json=as_json,
        text=f"subscription {sub.id} is now {sub.status}"
        + (f" (next digest: {data['next']})" if data["next"] else ""),
    )


@subscriptions_app.command("update")
def subscriptions_update(
    subscription_id: Annotated[int, typer.Argument(metavar="ID")],
    topics: Annotated[str | None, typer.Option(help="Comma-separated topics, or 'all'.")] = None,
    locale: Locale = None,
    timezone: Timezone = None,
    at: At = None,
    cron: Cron = None,
    name: Name = None,
    skip_empty: Annotated[
        bool | None, typer.Option("--skip-empty/--send-empty", help="Skip empty digests or not.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Change a subscription's topics, language, timezone, schedule or name; a new schedule
    applies from its next period, without restarting the bot."""

    async def work(db: Database) -> subs.Subscription:
        sub = await subs.get(db, subscription_id)
        zone = timezone or sub.timezone
        crontab = schedule_from(at=at, cron=cron) if at or cron else sub.cron
        wanted = topics or (",".join(sub.topics) if sub.topics else None)
        chosen = checked_options(wanted, locale or sub.locale, zone, crontab)
        now = utc_now()
        values: dict[str, Any] = {
            "topics": list(chosen) if chosen else None, "locale": locale or sub.locale, "timezone": zone,
            "cron": crontab, "name": name or sub.name,
            "skip_empty": sub.skip_empty if skip_empty is None else skip_empty,
        }  # fmt: skip
        if (crontab, zone) != (sub.cron, sub.timezone) and sub.status == subs.ACTIVE:
            values["next_fire_at"] = next_fire(crontab, zone, after=now)
        await subs.update_fields(db, subscription_id, now=now, **values)
        return await subs.get(db, subscription_id)

    sub = with_database(work)
    data = describe(sub)
    emit(
        data,
        as_json=as_json,
        text=f"subscription {sub.id} updated: {schedule_text(sub)}, "
        f"topics {','.join(sub.topics or ()) or 'all'}, {sub.locale}; next digest: {data['next'] or '—'}",
    )


@subscriptions_app.command("pause")
def subscriptions_pause(
    subscription_id: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str | None, typer.Option(help="Why.")] = None,
    as_json: AsJson = False,
) -> None:
    """Stop sending to a subscription until it is resumed."""
    change_status(subscription_id, subs.PAUSED, reason or "paused by an operator", as_json)


@subscriptions_app.command("resume")
def subscriptions_resume(
    subscription_id: Annotated[int, typer.Argument(metavar="ID")], as_json: AsJson = False
) -> None:
    """Resume a paused subscription from its next period (missed ones are not sent)."""
    change_status(subscription_id, subs.ACTIVE, None, as_json)


@subscriptions_app.command("remove")
def subscriptions_remove(
    subscription_id: Annotated[int, typer.Argument(metavar="ID")], as_json: AsJson = False
) -> None:
    """Remove a subscription (its delivery log is kept)."""
    change_status(subscription_id, subs.REMOVED, "removed", as_json)


def delivery_view(d: outbox.Delivery) -> dict[str, Any]:
    return {
        "id": d.id, "subscription": d.subscription_id, "delivery_id": d.delivery_id,
        "period": d.period.isoformat(), "trigger": d.trigger, "status": d.status,
        "attempts": d.attempts, "last_status": d.last_status, "answer": d.last_answer,
        "next_attempt_at": d.next_attempt_at.isoformat() if d.status == Status.PENDING and d.next_attempt_at else None,
        "window": [d.window_start.isoformat() if d.window_start else None,
                   d.window_end.isoformat() if d.window_end else None],
        "parts": d.parts,
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
    }  # fmt: skip


def deliveries_table(views: list[dict[str, Any]]) -> str:
    def short(text: str | None) -> str:
        text = (text or "").replace("\n", " ")
        return text if len(text) <= 60 else text[:59] + "…"

    return table(
        ["id", "sub", "period", "trigger", "status", "tries", "answer", "next try"],
        [[v["id"], v["subscription"], v["period"][:16], v["trigger"], v["status"], v["attempts"],
          short(" ".join(x for x in (v["last_status"], v["answer"]) if x)), (v["next_attempt_at"] or "")[:19]]
         for v in views],
    )  # fmt: skip


def deliveries(
    subscription: Annotated[int | None, typer.Option(help="Only this subscription.")] = None,
    status: Annotated[
        str | None, typer.Option(help="pending, sending, delivered, dead or skipped.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many (newest first).")] = 50,
    as_json: AsJson = False,
) -> None:
    """The delivery log (and the queue): newest first."""
    if status is not None and status not in list(Status):
        raise ConfigError(f"unknown status {status!r} (known: {', '.join(Status)})")
    found = with_database(
        lambda db: outbox.listing(db, subscription_id=subscription, status=status, limit=limit)
    )
    views = [delivery_view(d) for d in found]
    emit(views, as_json=as_json, text=deliveries_table(views) if views else "no deliveries")
