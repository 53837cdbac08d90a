"""The ``briefing`` command line."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from bot.cli import digest, feeds, outputs, secrets, send, state, subscriptions
from bot.cli.common import escaped, settings, setup_logging
from bot.errors import BriefingError, ConfigError, StateError

# Every BRIEFING_* variable, as `briefing --help` lists them (the README has the details).
ENVIRONMENT = {
    "BRIEFING_HOME": "data directory: the SQLite database and .eml files unless set apart",
    "BRIEFING_DATABASE_URL": "SQLite or PostgreSQL URL (default: SQLite in BRIEFING_HOME)",
    "BRIEFING_STATE_DIR": "state files for first start and 'state import' (default: shipped)",
    "BRIEFING_FEEDS_FILE": "news feeds to poll (default: the shipped config/feeds.yaml)",
    "BRIEFING_TOPICS_FILE": "keywords filing feed entries by topic (default: config/topics.yaml)",
    "BRIEFING_SMTP_HOST": "SMTP server; unset: email is written as .eml files",
    "BRIEFING_SMTP_PORT": "SMTP port (default 587, 465 with tls, 25 with none)",
    "BRIEFING_SMTP_SECURITY": "starttls (default), tls or none",
    "BRIEFING_SMTP_USERNAME": "SMTP login",
    "BRIEFING_SMTP_PASSWORD": "SMTP password",
    "BRIEFING_SMTP_CA_FILE": "CA bundle for the SMTP server's certificate",
    "BRIEFING_SMTP_CONNECTIONS": "SMTP connections kept open (default 3)",
    "BRIEFING_MAIL_FROM": "sender (default Briefing <briefing@localhost>)",
    "BRIEFING_MAIL_DIR": "where .eml files go (default: BRIEFING_HOME/mail)",
    "BRIEFING_DKIM_DOMAIN": "DKIM signing domain",
    "BRIEFING_DKIM_SELECTOR": "DKIM selector",
    "BRIEFING_DKIM_PRIVATE_KEY": "DKIM private key file",
    "BRIEFING_PUBLIC_URL": "public https address, for unsubscribe links",
    "BRIEFING_HTTP_HOST": "address 'briefing run' listens on (default 127.0.0.1)",
    "BRIEFING_HTTP_PORT": "port 'briefing run' listens on (default 8080; 0: any free port)",
    "BRIEFING_API_TOKEN": "token of the HTTP API (unset: the API is off)",
    "BRIEFING_METRICS_TOKEN": "token /metrics asks for (unset: /metrics is open)",
    "BRIEFING_SECRET_KEY": "key(s) encrypting webhook URLs and secrets at rest",
    "BRIEFING_ALLOW_PRIVATE_TARGETS": "allow private and loopback webhook targets (default false)",
    "BRIEFING_EGRESS_ALLOWLIST": "hosts and CIDRs, comma-separated: no connection elsewhere",
    "BRIEFING_TRUSTED_PROXIES": "proxies whose X-Forwarded-For is believed (addresses, CIDRs)",
    "BRIEFING_SIGNUP_PER_ADDRESS": "public sign-up requests per address a day (default 3)",
    "BRIEFING_SIGNUP_PER_CLIENT": "public sign-up requests per client an hour (default 10)",
    "BRIEFING_TEMPLATES_DIR": "your templates, overriding the built-in ones",
    "BRIEFING_DEFAULT_LOCALE": "locale of new subscriptions and previews (default en)",
    "BRIEFING_DEFAULT_TIMEZONE": "timezone of new subscriptions and previews (default UTC)",
    "BRIEFING_CATCHUP": "how late a missed period may still be sent (default 6h)",
    "BRIEFING_CONCURRENCY": "sends in flight per process (default 64)",
    "BRIEFING_SEND_TIMEOUT": "time one delivery may take before it is retried (default 5m)",
    "BRIEFING_STALE_AFTER": "age of the state after which digests say it is not current (3d)",
    "BRIEFING_EDITOR": "author of state edits when --by is not given (default: the OS user)",
}


class BriefingGroup(TyperGroup):
    """The root command: the bot's errors and usage errors become one line on stderr (a
    JSON object with ``--json``) and an exit code, the same in a process as in tests."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        code = translated(
            lambda: super(BriefingGroup, self).main(
                argv, prog_name, complete_var, standalone_mode=False, **extra
            ),
            as_json=wants_json(argv),
        )
        if standalone_mode:
            sys.exit(code)
        return code

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        from bot.settings import default_home

        try:
            home = str(settings().home)
        except ConfigError:
            home = os.environ.get("BRIEFING_HOME") or str(default_home())
        formatter.write_paragraph()
        formatter.write_text(
            "Data directory (BRIEFING_HOME), where the database and .eml files go unless "
            "BRIEFING_DATABASE_URL or BRIEFING_MAIL_DIR say otherwise:"
        )
        formatter.write(f"{' ' * (formatter.current_indent + 2)}{home}\n")  # never wrapped
        with formatter.section("Environment (also read from .env; the environment wins)"):
            formatter.write_dl(list(ENVIRONMENT.items()))


def wants_json(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON (``--json`` before any ``--``)."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in options


def report(message: str, *, code: int, as_json: bool, problems: Sequence[str] = ()) -> int:
    """Say what went wrong on stderr: one line (or one line per state problem), or a JSON
    object ``{"error": …, "code": …}``; return the exit code."""
    if as_json:
        data: dict[str, Any] = {"error": message, "code": code}
        if problems:
            data["problems"] = list(problems)
        typer.echo(json.dumps(data, ensure_ascii=False), err=True)
    elif problems:
        for problem in problems:
            typer.echo(escaped(problem), err=True)
    else:
        typer.echo(f"error: {escaped(message)}", err=True)
    return code


def usage_message(exc: ClickException) -> str:
    """A usage error in one line: ``--option: problem (see 'briefing cmd --help')``."""
    param = getattr(exc, "param", None)
    if param is not None:
        hint = param.get_error_hint().replace("'", "")
        message = f"{hint}: {exc.message}"
    else:
        message = exc.format_message()
    context = getattr(exc, "ctx", None)
    if isinstance(exc, UsageError) and context is not None:
        message += f" (see '{context.command_path} --help')"
    return " ".join(message.split())


def translated(command: Callable[[], Any], *, as_json: bool) -> int:
    """Run ``command`` and turn what it raises into a message and an exit code: 2 for a
    usage or configuration problem (state problems listed one a line), 1 for other
    failures, 130 when interrupted."""
    try:
        result = command()
    except NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except StateError as exc:
        return report(
            f"{len(exc.problems)} problem(s) in the state",
            code=2,
            as_json=as_json,
            problems=[str(p) for p in exc.problems],
        )
    except BriefingError as exc:
        return report(str(exc), code=2 if isinstance(exc, ConfigError) else 1, as_json=as_json)
    except ClickException as exc:
        return report(usage_message(exc), code=exc.exit_code, as_json=as_json)
    except (typer.Abort, KeyboardInterrupt):
        return report("interrupted", code=130, as_json=as_json)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


app = typer.Typer(
    cls=BriefingGroup,
    help="Briefing bot: a sourced daily digest of the US–Russia–Ukraine peace talks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: flags without metavars, no text wrapped in boxes
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
app.add_typer(state.state_app, name="state")
app.add_typer(subscriptions.subscribe_app, name="subscribe")
app.add_typer(subscriptions.subscriptions_app, name="subscriptions")
app.add_typer(secrets.secrets_app, name="secrets")
outputs.register(app, subscriptions.subscribe_app)  # outputs; subscribe telegram|matrix|…
app.command()(digest.preview)
app.command()(digest.schema)
app.command()(send.send)
app.command()(subscriptions.deliveries)
app.command()(subscriptions.prune)
feeds.register(app)  # feeds, ingest, review list|accept|reject


@app.command()
def run(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug messages too.")
    ] = False,
) -> None:
    """Run the bot: scheduler, workers and HTTP server.

    Runs until SIGTERM or Ctrl-C; logs where the data directory and the database are, and
    what it will send next.
    """
    import asyncio

    from bot.service import serve

    setup_logging(verbose)
    asyncio.run(serve(settings()))


def main() -> None:
    """Entry point (the ``briefing`` script)."""
    app()
