"""The API's bearer token (``BRIEFING_API_TOKEN``) and the metrics' own, if set
(``BRIEFING_METRICS_TOKEN``): compared in constant time; with no API token set, the API is
off and every route of it answers 404 naming the setting."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from bot.web.context import Web
from bot.web.problems import ProblemError

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="BRIEFING_API_TOKEN, as `Authorization: Bearer <token>`.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
API_OFF = "the HTTP API is off: set BRIEFING_API_TOKEN to turn it on"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="briefing"'}


def configured(token: SecretStr | None) -> str | None:
    """The token's value, None when it is unset or blank."""
    value = token.get_secret_value().strip() if token is not None else ""
    return value or None


def matches(credentials: HTTPAuthorizationCredentials | None, expected: str) -> bool:
    given = credentials.credentials if credentials is not None else ""
    return hmac.compare_digest(given.encode(), expected.encode())


async def require_token(web: Web, credentials: Credentials) -> None:
    """A dependency of every API route: 404 while the API is off, 401 without the token."""
    expected = configured(web.settings.api_token)
    if expected is None:
        raise ProblemError(404, API_OFF)
    if not matches(credentials, expected):
        raise ProblemError(401, "a valid API token is required", headers=CHALLENGE)


async def require_metrics_token(web: Web, credentials: Credentials) -> None:
    """``/metrics`` is open unless ``BRIEFING_METRICS_TOKEN`` is set."""
    expected = configured(web.settings.metrics_token)
    if expected is not None and not matches(credentials, expected):
        raise ProblemError(401, "a valid metrics token is required", headers=CHALLENGE)
