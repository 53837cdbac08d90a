"""The state's history and the editors' changes, under ``/api/v1/state`` (included in
``bot.web.api``'s router, behind its token): the operations of ``briefing state
history|add|update|status|retract`` (``bot.store.states``), called as the CLI calls them.

A change is validated with the same rules as the state files; a file of developments with
problems answers 422 listing each ``line N: message``; a change refused so as not to
overwrite another editor's (``EditConflict``) answers 409."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from bot.errors import ConfigError, StateError
from bot.operations.values import check_name
from bot.state.edit import DevelopmentChanges, Editor
from bot.state.model import LINE_LIMIT, TEXT_LIMIT
from bot.store import states
from bot.store.states import ItemVersion, RevisionInfo
from bot.web.context import Web, WebContext
from bot.web.models import (
    DevelopmentChange,
    EditedView,
    NewDevelopments,
    Retraction,
    StatusLine,
)
from bot.web.problems import PROBLEM, Problem, ProblemError

router = APIRouter(tags=["state"])
API_EDITOR = "api"
BODY = "body"  # how the problems of a file of developments sent in a request name it
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
SLUG = r"^[a-z0-9][a-z0-9-]*$"
DevelopmentId = Annotated[
    str, Path(pattern=SLUG, max_length=80, description="The development's id.")
]
Topic = Annotated[str, Path(pattern=SLUG, max_length=80, description="The topic's id.")]


def author(web: WebContext, by: str | None) -> str:
    """Who makes a change or a decision: ``by``, else ``BRIEFING_EDITOR``, else ``api``."""
    return check_name(by or web.settings.editor or API_EDITOR, option="by") or API_EDITOR


def _editor(web: WebContext, by: str | None, because: str) -> Editor:
    return Editor(by=author(web, by), because=because, at=web.clock())


def _edited(edited: states.Edited) -> EditedView:
    return EditedView(
        item=edited.item,
        version=edited.version,
        revision=edited.revision,
        number=edited.number,
        change=edited.summary,
    )


@router.get("/state/history")
async def read_history(web: Web) -> list[RevisionInfo]:
    """Every revision of the state, oldest first: who made it, when, what and why."""
    return await states.revisions(web.db)


@router.get("/state/history/{item}")
async def read_item_history(
    web: Web,
    item: Annotated[
        str, Path(pattern=SLUG, max_length=80, description="A development's id or a topic.")
    ],
) -> list[ItemVersion]:
    """Every version of a development or of a topic's status line, oldest first; the last
    one's ``version`` is what ``expect_revision`` names."""
    try:
        return await states.item_history(web.db, item)
    except ConfigError as exc:
        raise ProblemError(404, str(exc)) from None


UNSUPPORTED: dict[str, Any] = {
    "model": Problem,
    "content": {PROBLEM: {}},
    "description": "Unsupported Media Type",
}
ADD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/yaml": {
            "schema": {
                "type": "string",
                "description": "Developments (and the actors and sources they need), as in "
                "config/state/; `because` and `by` go in the query.",
            }
        },
        "application/json": {"schema": NewDevelopments.model_json_schema()},
    },
}


async def _additions(
    request: Request, *, because: str | None, by: str | None
) -> tuple[str, str | None, str | None]:
    """The YAML text of the request, and who sends it and why (the JSON body's, else the
    query's)."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    body = await request.body()
    if kind in YAML_TYPES:
        try:
            return body.decode("utf-8"), because, by
        except UnicodeDecodeError as exc:
            raise ProblemError(422, f"the body is not UTF-8 text (byte {exc.start + 1})") from None
    if kind == "application/json" or kind.endswith("+json"):
        try:
            wrapped = NewDevelopments.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": (BODY, *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None
        return wrapped.yaml, wrapped.because or because, wrapped.by or by
    raise ProblemError(415, 'send the developments as application/yaml, or as JSON: {"yaml": "…"}')


@router.post(
    "/state/developments",
    status_code=201,
    openapi_extra={"requestBody": ADD_BODY},
    responses={415: UNSUPPORTED},
)
async def add_developments(
    web: Web,
    request: Request,
    because: Annotated[
        str | None,
        Query(min_length=1, max_length=TEXT_LIMIT, description="Why (with a YAML body)."),
    ] = None,
    by: Annotated[
        str | None,
        Query(min_length=1, max_length=LINE_LIMIT, description="Who (with a YAML body)."),
    ] = None,
) -> EditedView:
    """Add developments from a YAML document, recorded now, as `briefing state add --file`:
    the same schema and rules as the state files."""
    text, because, by = await _additions(request, because=because, by=by)
    if because is None:
        raise ProblemError(422, "because: required (in the JSON body, or in the query)")
    try:
        edited = await states.add_developments(
            web.db, text, display=BODY, editor=_editor(web, by, because)
        )
    except StateError as exc:
        if any(p.file != BODY for p in exc.problems):
            raise  # the stored state's own problem, not the request's
        raise ProblemError(
            422,
            "; ".join(f"line {p.line}: {p.message}" for p in exc.problems),
            errors=[{"loc": [BODY], "line": p.line, "msg": p.message} for p in exc.problems],
        ) from None
    return _edited(edited)


@router.patch("/state/developments/{dev_id}")
async def update_development(
    web: Web, dev_id: DevelopmentId, change: DevelopmentChange
) -> EditedView:
    """Change a development's standing, title, summary, attribution or sources, as `briefing
    state update`; 409 if another editor changed it since (see `expect_revision`)."""
    changes = DevelopmentChanges(
        standing=change.standing,
        title_en=change.title_en,
        title_fr=change.title_fr,
        summary_en=change.summary_en,
        summary_fr=change.summary_fr,
        reported_by=tuple(change.reported_by) if change.reported_by is not None else None,
        add_sources=tuple(change.add_source or ()),
    )
    edited = await states.update_development(
        web.db,
        dev_id,
        changes,
        editor=_editor(web, change.by, change.because),
        expect_revision=change.expect_revision,
    )
    return _edited(edited)


@router.put("/state/topics/{topic}/status")
async def change_status(web: Web, topic: Topic, line: StatusLine) -> EditedView:
    """Give a topic a new status line in both languages, as `briefing state status`."""
    edited = await states.change_status(
        web.db,
        topic,
        en=line.en,
        fr=line.fr,
        editor=_editor(web, line.by, line.because),
        expect_revision=line.expect_revision,
    )
    return _edited(edited)


@router.post("/state/developments/{dev_id}/retract")
async def retract_development(
    web: Web, dev_id: DevelopmentId, retraction: Retraction
) -> EditedView:
    """Withdraw a development, as `briefing state retract`: digests report the retraction
    with its reason; its history is kept."""
    edited = await states.retract_development(
        web.db,
        dev_id,
        editor=_editor(web, retraction.by, retraction.because),
        expect_revision=retraction.expect_revision,
    )
    return _edited(edited)
