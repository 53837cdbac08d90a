"""Encryption at rest for what must stay secret in the database (webhook URLs, signing
secrets), with the keys of ``BRIEFING_SECRET_KEY``.

A sealed value is ``fernet:`` followed by a Fernet token; any other value is clear text and
is read as it is, so clear and sealed values live side by side while a database is being
encrypted (``briefing secrets rotate``). The first key seals; every key opens, so a new key
can be put first while the old one still reads what it sealed.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from bot.errors import ConfigError

PREFIX = "fernet:"
SETTING = "BRIEFING_SECRET_KEY"


def new_key() -> str:
    """A fresh key for ``BRIEFING_SECRET_KEY`` (32 random bytes, url-safe base64)."""
    return Fernet.generate_key().decode()


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


class Keyring:
    """The keys of ``BRIEFING_SECRET_KEY``; with none, values are stored in the clear."""

    def __init__(self, keys: Sequence[Fernet] = ()) -> None:
        self._keys = list(keys)
        self._all = MultiFernet(self._keys) if self._keys else None

    @classmethod
    def from_setting(cls, value: SecretStr | str | None) -> Keyring:
        """The keys of a comma-separated ``BRIEFING_SECRET_KEY``; raise ``ConfigError``
        naming the setting (never a key) if one is not a Fernet key."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value or ""
        given = [part.strip() for part in text.split(",") if part.strip()]
        keys = []
        for number, key in enumerate(given, start=1):
            try:
                keys.append(Fernet(key.encode()))
            except (ValueError, TypeError, UnicodeError):
                which = f"key {number} of {len(given)}" if len(given) > 1 else "the key"
                raise ConfigError(
                    f"{SETTING}: {which} is not a Fernet key (32 bytes in url-safe base64, "
                    "comma-separated if several); make one with 'briefing secrets key'"
                ) from None
        return cls(keys)

    @property
    def enabled(self) -> bool:
        """Whether there is a key to seal with."""
        return self._all is not None

    def seal(self, value: str) -> str:
        """``value`` encrypted under the first key (as it is when there is no key)."""
        if self._all is None or is_sealed(value):
            return value
        return PREFIX + self._all.encrypt(value.encode()).decode("ascii")

    def open(self, value: str, *, what: str) -> str:
        """The clear text of ``value`` (a clear value as it is); raise ``ConfigError``
        saying ``what`` could not be read and which setting to fix."""
        if not is_sealed(value):
            return value
        if self._all is None:
            raise ConfigError(
                f"{what} is encrypted, but {SETTING} is not set: set it to the key(s) it was "
                "encrypted with"
            )
        try:
            return self._all.decrypt(value[len(PREFIX) :].encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise ConfigError(
                f"{what} cannot be decrypted with any key in {SETTING}: "
                "add the key it was encrypted with (keys are comma-separated, the first encrypts)"
            ) from exc

    def reseal(self, value: str, *, what: str) -> str:
        """``value`` sealed under the first key: the same text if it already is, else
        encrypted afresh (a clear value, or one sealed under another key)."""
        if self._all is None:
            raise ConfigError(f"{SETTING} is not set: there is no key to encrypt with")
        if is_sealed(value):
            try:
                self._keys[0].decrypt(value[len(PREFIX) :].encode("ascii"))
            except (InvalidToken, UnicodeError):
                pass
            else:
                return value
        return self.seal(self.open(value, what=what))
