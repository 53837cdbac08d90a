"""The ``briefing`` command line."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bot.delivery import deliver, render_message
from bot.digest import Digest, DigestRenderer, ReaderOptions, Window, compose
from bot.errors import BriefingError, ConfigError, StateError
from bot.outputs import Envelope, Target, infer_kind, make_context, output_class
from bot.outputs.webhooks import WebhookOutput
from bot.outputs.webhooks import new_secret as new_signing_secret
from bot.redact import mask_target
from bot.settings import get_settings
from bot.state import State, load_state
from bot.state.model import check_timezone

app = typer.Typer(
    help="Briefing bot: a sourced daily digest of the US–Russia–Ukraine peace talks.",
    no_args_is_help=True,
    add_completion=False,
)
state_app = typer.Typer(help="Inspect and validate the briefing state.", no_args_is_help=True)
app.add_typer(state_app, name="state")


WEBHOOK_PREVIEWS = ("slack", "discord", "teams", "mattermost")


def fail(message: str, *, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_topics(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    return tuple(t.strip() for t in value.split(",") if t.strip())


def parse_moment(value: str, *, option: str, timezone: str) -> datetime:
    """An ISO 8601 date or datetime; a naive one is read in ``timezone``."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 date or datetime (e.g. 2025-12-02T07:00)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=check_timezone(timezone))
    return moment


def load_current_state() -> State:
    settings = get_settings()
    return load_state(settings.state_dir, base=Path.cwd())


def renderer() -> DigestRenderer:
    return DigestRenderer(templates_dir=get_settings().templates_dir)


@state_app.command("validate")
def state_validate(
    path: Annotated[Path | None, typer.Argument(help="A state file or directory.")] = None,
) -> None:
    """Check the state; print every problem as file:line: message (exit 2 if any)."""
    target = path or get_settings().state_dir
    try:
        state = load_state(target)
    except StateError as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        typer.echo(f"{len(exc.problems)} problem(s) found in {target}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{target}: valid — {len(state.topics)} topics, {len(state.actors)} actors, "
        f"{len(state.sources)} sources, {len(state.developments)} developments "
        f"(revision {state.revision})"
    )


@app.command()
def preview(
    topics: Annotated[
        str | None, typer.Option(help="Comma-separated topics (default: all).")
    ] = None,
    locale: Annotated[str | None, typer.Option(help="fr or en.")] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="text, markdown, html, json, slack, discord, teams or mattermost."
        ),
    ] = "text",
    since: Annotated[str | None, typer.Option(help="Window start (ISO 8601).")] = None,
    now: Annotated[str | None, typer.Option(help="Fix the clock (ISO 8601).")] = None,
    timezone: Annotated[str | None, typer.Option(help="The reader's IANA timezone.")] = None,
) -> None:
    """Print the digest a reader would get now (chat formats: the payloads to be sent)."""
    options = reader_options(topics, locale, timezone)
    zone = options.timezone
    end = parse_moment(now, option="--now", timezone=zone) if now else datetime.now(UTC)
    start = parse_moment(since, option="--since", timezone=zone) if since else None
    digest = compose(load_current_state(), options, Window.ending(end, since=start))
    if fmt in WEBHOOK_PREVIEWS:
        output_cls = output_class(fmt)
        output = output_cls(make_context(get_settings()))
        if not isinstance(output, WebhookOutput):
            fail(f"--format {fmt}: not a webhook output")
        payloads = output.payloads(render_message(renderer(), digest, output_cls))
        sys.stdout.write(json.dumps(payloads, ensure_ascii=False, indent=2) + "\n")
        return
    sys.stdout.write(renderer().render(digest, fmt))


def reader_options(topics: str | None, locale: str | None, timezone: str | None) -> ReaderOptions:
    settings = get_settings()
    zone = timezone or settings.default_timezone
    try:
        check_timezone(zone)
    except ValueError as exc:
        fail(f"--timezone: {exc}")
    return ReaderOptions(
        topics=parse_topics(topics), locale=locale or settings.default_locale, timezone=zone
    )


def emit(data: dict[str, Any], *, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text)


@app.command()
def send(
    to: Annotated[str, typer.Option(help="A webhook URL or an email address.")],
    kind: Annotated[
        str | None,
        typer.Option(help="generic, slack, discord, teams, mattermost or email (inferred)."),
    ] = None,
    secret: Annotated[
        list[str] | None, typer.Option(help="Signing secret(s) whsec_… for generic webhooks.")
    ] = None,
    topics: Annotated[str | None, typer.Option(help="Comma-separated topics.")] = None,
    locale: Annotated[str | None, typer.Option(help="fr or en.")] = None,
    timezone: Annotated[str | None, typer.Option(help="The reader's IANA timezone.")] = None,
    now: Annotated[str | None, typer.Option(help="Fix the clock (ISO 8601).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and render, send nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Send the current digest once to one target; exit 1 if it failed."""
    options = reader_options(topics, locale, timezone)
    end = parse_moment(now, option="--now", timezone=options.timezone) if now else datetime.now(UTC)
    digest = compose(load_current_state(), options, Window.ending(end))
    outcome = asyncio.run(
        one_off(to, kind=kind, secrets=tuple(secret or ()), digest=digest, dry_run=dry_run)
    )
    data = {k: v for k, v in outcome.items() if k != "secret_shown"}
    lines = [f"{outcome['kind']} → {outcome['target']}: {outcome['result']}"]
    if outcome.get("new_secret"):
        lines.append(f"signing secret (shown once, keep it): {outcome['new_secret']}")
    emit(data, as_json=as_json, text="\n".join(lines))
    if not outcome["ok"]:
        raise typer.Exit(1)


async def one_off(
    address: str, *, kind: str | None, secrets: tuple[str, ...], digest: Digest, dry_run: bool
) -> dict[str, Any]:
    settings = get_settings()
    name = kind or infer_kind(address)
    output_cls = output_class(name)
    context = make_context(settings)
    output = output_cls(context)
    new_secret = None
    if name == "generic" and not secrets:
        new_secret = new_signing_secret()
        secrets = (new_secret,)
    try:
        target = await output.validate(Target(kind=name, address=address, secrets=secrets))
        message = render_message(renderer(), digest, output_cls)
        result: dict[str, Any] = {
            "kind": name,
            "target": mask_target(target.address),
            "new_secret": new_secret,
        }
        if dry_run:
            return {
                **result,
                "ok": True,
                "dry_run": True,
                "result": "dry run: target valid, "
                f"message rendered ({', '.join(output_cls.formats)}), nothing sent",
            }
        envelope = Envelope(delivery_id=f"oneoff_{uuid.uuid4().hex}")
        outcome = await deliver(output, target, message, envelope=envelope)
    finally:
        await output.aclose()
        await context.aclose()
    verdict = "delivered" if outcome.ok else "FAILED"
    return {
        **result,
        "ok": outcome.ok,
        "status": outcome.status,
        "answer": outcome.answer,
        "attempts": outcome.attempts,
        "parts": outcome.parts,
        "result": f"{verdict} — status {outcome.status} after {outcome.attempts} attempt(s)"
        + (f", {outcome.parts} part(s)" if outcome.parts > 1 else "")
        + (f"; answer: {outcome.answer}" if outcome.answer else ""),
    }


@app.command()
def run() -> None:
    """Run the bot: load and check the state, then print today's digest."""
    state = load_current_state()
    typer.echo(f"state loaded: revision {state.revision}, {len(state.developments)} developments")
    digest = compose(
        state, ReaderOptions(locale=get_settings().default_locale), Window.ending(datetime.now(UTC))
    )
    sys.stdout.write(renderer().render(digest, "text"))


def main() -> None:
    """Entry point: run the CLI, turning the bot's errors into a message and an exit code."""
    try:
        app()
    except StateError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        sys.exit(2)
    except BriefingError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
