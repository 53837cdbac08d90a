"""Signed links for readers: the preferences page (``/preferences/{token}``).

The token is the subscription's unsubscribe token, signed (itsdangerous) with a key
derived from each ``BRIEFING_SECRET_KEY`` key (the first one signs, every one verifies,
so rotating the key keeps old links working while the old key is listed), or, with no
secret key set, with a random key kept in the data directory (``signing.key``). Several
instances that serve the pages need the same ``BRIEFING_SECRET_KEY``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeSerializer

from bot.errors import ConfigError
from bot.settings import Settings

PREFERENCES = "preferences"
KEY_FILE = "signing.key"


def signing_keys(settings: Settings) -> list[bytes]:
    """The keys links are signed with, the one that signs last (itsdangerous' order)."""
    text = settings.secret_key.get_secret_value() if settings.secret_key else ""
    given = [part.strip() for part in text.split(",") if part.strip()]
    if given:
        derived = [hmac.new(k.encode(), b"briefing links", hashlib.sha256).digest() for k in given]
        return list(reversed(derived))
    return [_key_file(settings)]


def _key_file(settings: Settings) -> bytes:
    """The key in ``BRIEFING_HOME/signing.key``, made at first use (written whole before
    it appears, so that processes starting together all read the same one)."""
    path = settings.home / KEY_FILE
    try:
        if not path.exists():
            settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=settings.home, delete=False) as handle:
                handle.write(secrets.token_hex(32))  # the file is the owner's only
            try:
                os.link(handle.name, path)
            except FileExistsError:
                pass  # another process made it first
            finally:
                os.unlink(handle.name)
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot keep the link signing key in {path} (BRIEFING_HOME): {exc}; "
            "set BRIEFING_SECRET_KEY instead"
        ) from exc
    if len(key) < 16:
        raise ConfigError(f"{path} holds no usable key: delete it, and a new one is made")
    return key


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(signing_keys(settings), salt=PREFERENCES)


def preferences_token(settings: Settings, unsubscribe_token: str) -> str:
    return _serializer(settings).dumps(unsubscribe_token)


def preferences_url(settings: Settings, unsubscribe_token: str) -> str | None:
    """The reader's preferences page, or None without ``BRIEFING_PUBLIC_URL``."""
    if not settings.public_url:
        return None
    token = preferences_token(settings, unsubscribe_token)
    return f"{settings.public_url.rstrip('/')}/preferences/{quote(token)}"


def unsubscribe_token_of(settings: Settings, token: str) -> str | None:
    """The unsubscribe token a preferences token was signed for; None if it is forged."""
    try:
        value = _serializer(settings).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None
