"""The admin page's session: a signed cookie (itsdangerous) holding the CSRF token, whether
its holder signed in with ``BRIEFING_API_TOKEN``, the page's language and the outcome of
the last action. Signed with a key derived from the token, so changing the token signs
everyone out. HttpOnly, SameSite=Strict, Secure when ``BRIEFING_PUBLIC_URL`` is https."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass, field

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.settings import Settings

COOKIE = "briefing_admin"
PATH = "/admin"
MAX_AGE = 12 * 3600
"""Seconds a session lasts."""


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    signed_in: bool = False
    lang: str = "en"
    flash: list[list[str]] = field(default_factory=list)  # [[ok|error, text], …]

    def say(self, ok: bool, text: str) -> None:
        self.flash.append(["ok" if ok else "error", text])


def api_token(settings: Settings) -> str | None:
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    return token or None


def _serializer(token: str) -> URLSafeTimedSerializer:
    key = hmac.new(token.encode(), b"briefing admin session", hashlib.sha256).digest()
    return URLSafeTimedSerializer(key, salt="admin")


def load(request: Request, token: str) -> Session:
    """The request's session, or a new signed-out one (none, forged, expired, malformed)."""
    value = request.cookies.get(COOKIE)
    if value:
        try:
            data = _serializer(token).loads(value, max_age=MAX_AGE)
            return Session(
                csrf=str(data["csrf"]), signed_in=bool(data["signed_in"]),
                lang=str(data["lang"]), flash=list(data.get("flash", [])),
            )  # fmt: skip
        except (BadSignature, KeyError, TypeError):
            pass
    return Session()


def save(response: Response, session: Session, token: str, settings: Settings) -> None:
    secure = bool(settings.public_url and settings.public_url.startswith("https://"))
    response.set_cookie(
        COOKIE, _serializer(token).dumps(asdict(session)), max_age=MAX_AGE, path=PATH,
        httponly=True, secure=secure, samesite="strict",
    )  # fmt: skip


def same(given: str | None, expected: str) -> bool:
    """Whether two secrets match, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
