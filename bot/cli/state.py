"""``briefing state …``: validate, import, edit (with revisions), history and export."""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import (
    check_name,
    emit,
    fail,
    plural,
    settings,
    table,
    with_database,
)
from bot.errors import StateError
from bot.service import state_dir, utc_now
from bot.state import load_state
from bot.state.edit import DevelopmentChanges, EditError, Editor
from bot.store import states
from bot.store.database import Database

state_app = typer.Typer(
    help="Validate, import, edit and export the briefing state.", no_args_is_help=True
)

PathArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="PATH",
        help="A state file or directory (default: BRIEFING_STATE_DIR or the shipped state).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
By = Annotated[
    str | None,
    typer.Option(
        "--by", metavar="NAME", help="Author (default: BRIEFING_EDITOR, else the OS user)."
    ),
]
Because = Annotated[
    str, typer.Option("--because", metavar="TEXT", help="Why (kept in the history; required).")
]
Expect = Annotated[
    int | None,
    typer.Option(
        "--expect-revision",
        metavar="N",
        help="Refuse unless the item is still at this revision (see 'state history ID'; "
        "default: needed only on top of another editor's change).",
    ),
]


def _author(by: str | None) -> str:
    name = by or settings().editor
    if not name:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            fail("--by: no author given and none found (set BRIEFING_EDITOR)")
    return check_name(name, option="--by") or ""


def _editor(by: str | None, because: str) -> Editor:
    if not because.strip():
        fail("--because: empty")
    return Editor(by=_author(by), because=because, at=utc_now())


def _run(work: Callable[[Database], Awaitable[states.Edited]], *, as_json: bool) -> None:
    try:
        edited = with_database(work)
    except EditError as exc:
        fail(f"--{exc.field.replace('_', '-')}: {exc.message}")
    emit(
        {
            "item": edited.item,
            "version": edited.version,
            "revision": edited.revision,
            "number": edited.number,
            "change": edited.summary,
        },
        as_json=as_json,
        text=f"{edited.summary}: {edited.item} now at revision {edited.version} "
        f"(state revision {edited.revision})",
    )


@state_app.command("validate")
def state_validate(path: PathArg = None) -> None:
    """Check the state files.

    Prints every problem as file:line: message, and exits 2 if there is any.
    """
    target = path or state_dir(settings())
    try:
        state = load_state(target)
    except StateError as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        typer.echo(f"{len(exc.problems)} problem(s) found in {target}", err=True)
        raise typer.Exit(2) from None
    sizes = [
        (len(state.topics), "topic"),
        (len(state.actors), "actor"),
        (len(state.sources), "source"),
        (len(state.developments), "development"),
    ]
    if state.changes:
        sizes.append((len(state.changes), "change"))
    counts = ", ".join(plural(size, name) for size, name in sizes)
    typer.echo(f"{target}: valid — {counts} (revision {state.revision})")


@state_app.command("import")
def state_import(
    path: PathArg = None,
    force: Annotated[
        bool, typer.Option("--force", help="Import even if it undoes changes made since.")
    ] = False,
    by: By = None,
    as_json: AsJson = False,
) -> None:
    """Store the state files as the current revision.

    A no-op if nothing changed; refused if the files are older than edits made since
    (unless --force). The running bot uses it from its next delivery on.
    """
    target = path or state_dir(settings())
    author = _author(by)
    imported = with_database(
        lambda db: states.import_state(db, target, now=utc_now(), by=author, force=force)
    )
    verb = (
        "imported as a new revision"
        if imported.created
        else "unchanged: already the current revision"
    )
    emit(
        {
            "revision": imported.revision,
            "created": imported.created,
            "path": str(target),
            "developments": len(imported.state.developments),
        },
        as_json=as_json,
        text=f"{target}: {verb} {imported.revision} ({len(imported.state.developments)} developments)",
    )


@state_app.command("add")
def state_add(
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            metavar="F.yaml",
            help="Developments (and the actors and sources they need), as in config/state.",
        ),
    ],
    because: Because,
    by: By = None,
    as_json: AsJson = False,
) -> None:
    """Add developments from a YAML file, recorded now."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--file: cannot read {file}: {getattr(exc, 'strerror', None) or exc}")
    editor = _editor(by, because)
    _run(
        lambda db: states.add_developments(db, text, display=str(file), editor=editor),
        as_json=as_json,
    )


_SAME = "The new text (default: unchanged)."


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


@state_app.command("update")
def state_update(
    dev_id: Annotated[str, typer.Argument(metavar="ID", help="The development's id.")],
    because: Because,
    standing: Annotated[
        str | None,
        typer.Option(
            metavar="S", help="confirmed, claimed, contested or expected (default: unchanged)."
        ),
    ] = None,
    title_en: Annotated[str | None, typer.Option("--title-en", metavar="TEXT", help=_SAME)] = None,
    title_fr: Annotated[str | None, typer.Option("--title-fr", metavar="TEXT", help=_SAME)] = None,
    summary_en: Annotated[
        str | None, typer.Option("--summary-en", metavar="TEXT", help=_SAME)
    ] = None,
    summary_fr: Annotated[
        str | None, typer.Option("--summary-fr", metavar="TEXT", help=_SAME)
    ] = None,
    reported_by: Annotated[
        str | None,
        typer.Option(
            "--reported-by",
            metavar="A,B",
            help="Who now reports or claims it (default: unchanged).",
        ),
    ] = None,
    add_source: Annotated[
        list[str] | None,
        typer.Option("--add-source", metavar="SRC", help="A source id to add (default: none)."),
    ] = None,
    expect_revision: Expect = None,
    by: By = None,
    as_json: AsJson = False,
) -> None:
    """Change a development: its standing, title, summary, attribution or sources."""
    changes = DevelopmentChanges(
        standing=standing,
        title_en=title_en,
        title_fr=title_fr,
        summary_en=summary_en,
        summary_fr=summary_fr,
        reported_by=_split(reported_by),
        add_sources=tuple(add_source or ()),
    )
    if changes == DevelopmentChanges():
        fail("nothing to change: give --standing, --title-en, --summary-fr, --add-source…")
    editor = _editor(by, because)
    _run(
        lambda db: states.update_development(
            db, dev_id, changes, editor=editor, expect_revision=expect_revision
        ),
        as_json=as_json,
    )


@state_app.command("status")
def state_status(
    topic: Annotated[str, typer.Argument(metavar="TOPIC", help="The topic's id.")],
    en: Annotated[str, typer.Option("--en", metavar="TEXT", help="The status in English.")],
    fr: Annotated[str, typer.Option("--fr", metavar="TEXT", help="The status in French.")],
    because: Because,
    expect_revision: Expect = None,
    by: By = None,
    as_json: AsJson = False,
) -> None:
    """Give a topic a new status line (in both languages)."""
    editor = _editor(by, because)
    _run(
        lambda db: states.change_status(
            db, topic, en=en, fr=fr, editor=editor, expect_revision=expect_revision
        ),
        as_json=as_json,
    )


@state_app.command("retract")
def state_retract(
    dev_id: Annotated[str, typer.Argument(metavar="ID", help="The development's id.")],
    because: Because,
    expect_revision: Expect = None,
    by: By = None,
    as_json: AsJson = False,
) -> None:
    """Withdraw a development; digests report the retraction with its reason."""
    editor = _editor(by, because)
    _run(
        lambda db: states.retract_development(
            db, dev_id, editor=editor, expect_revision=expect_revision
        ),
        as_json=as_json,
    )


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "from the start"


@state_app.command("history")
def state_history(
    item: Annotated[
        str | None,
        typer.Argument(metavar="ID", help="A development or a topic (default: the whole state)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List the state's revisions, or the versions of one development or status line."""
    if item is None:
        revisions = with_database(states.revisions)
        rows: list[list[object]] = [
            [r.number, r.revision, _when(r.at), r.by or "—", r.summary, r.because or "—"]
            for r in revisions
        ]
        text = table(["#", "revision", "at", "by", "change", "because"], rows)
        emit([asdict(r) for r in revisions], as_json=as_json, text=text)
        return
    versions = with_database(lambda db: states.item_history(db, item))
    rows = [
        [v.version, _when(v.at), v.kind, v.standing or "—", v.by or "—", v.because or "—",
         v.title or v.text]
        for v in versions
    ]  # fmt: skip
    text = table(["revision", "at", "change", "standing", "by", "because", "title"], rows)
    emit([asdict(v) for v in versions], as_json=as_json, text=text)


@state_app.command("export")
def state_export(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Where to write the files.")],
    as_json: AsJson = False,
) -> None:
    """Write the current state as YAML files.

    'state validate DIR' accepts them and 'state import DIR' gives the same revision.
    """
    exported = with_database(lambda db: states.export_state(db, directory))
    emit(
        {"revision": exported.revision, "files": [str(f) for f in exported.files]},
        as_json=as_json,
        text=f"{directory}: revision {exported.revision} written "
        f"({', '.join(f.name for f in exported.files)})",
    )
