"""Errors as RFC 9457 problem details (``application/problem+json``), for every route:
HTTP errors, validation errors, the bot's own errors, and anything unexpected (logged once
with its traceback; the client gets a 500 that says nothing more)."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from bot.errors import BriefingError, ConfigError, EditConflict
from bot.operations import NotFound
from bot.state.edit import UnknownItem

log = logging.getLogger("briefing.web")
PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Each invalid field: where (loc) and what (msg)."
    )


class ProblemError(Exception):
    """Raised by a route to answer with a problem detail."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.errors = errors


def problem(
    status: int,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM: {}}, "description": HTTPStatus(status).phrase}
    for status in (400, 401, 404, 409, 413, 422, 500)
}
"""The problem answers every API operation may give, for the OpenAPI document."""


def allowed_methods(request: Request, fallback: str) -> str:
    """Every method the API serves at the request's path, from the OpenAPI document (the
    router names only the first route's of a path); ``fallback`` for other paths."""
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods = {method.upper() for method in item if method != "parameters"}
            return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
    return fallback


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` with a problem detail."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request, headers.get("Allow", ""))
        return problem(exc.status_code, detail, headers=headers)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors)
        return problem(422, detail, errors=errors)

    async def raised(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem(exc.status, exc.detail, errors=exc.errors, headers=exc.headers)

    async def bot_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFound | UnknownItem):
            return problem(404, str(exc))
        if isinstance(exc, EditConflict):
            return problem(409, str(exc))  # a concurrent edit, refused so as not to be lost
        if isinstance(exc, ConfigError):
            return problem(422, str(exc))
        log.error("cannot answer %s %s: %s", request.method, request.url.path, exc)
        return problem(500, str(exc))  # the bot's own problem (its state files, its templates)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unexpected error answering %s %s", request.method, request.url.path, exc_info=exc
        )
        return problem(500, "unexpected error; it was logged")

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(ProblemError, raised)
    app.add_exception_handler(BriefingError, bot_error)
    app.add_exception_handler(Exception, unexpected)
