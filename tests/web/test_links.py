"""Signed preferences links: from the secret key (rotation-safe) or a key file."""

from __future__ import annotations

import pytest

from bot.crypto import new_key
from bot.errors import ConfigError
from bot.links import KEY_FILE, preferences_token, preferences_url, unsubscribe_token_of
from bot.settings import Settings


def settings(tmp_path, **values: object) -> Settings:
    return Settings(_env_file=None, home=tmp_path / "home", **values)  # type: ignore[call-arg]


def test_links_survive_a_key_rotation_and_refuse_forgeries(tmp_path) -> None:
    old, new = new_key(), new_key()
    before = settings(tmp_path, secret_key=old)
    token = preferences_token(before, "tok-1")
    rotated = settings(tmp_path, secret_key=f"{new},{old}")
    assert unsubscribe_token_of(rotated, token) == "tok-1"
    assert preferences_token(rotated, "tok-1") != token  # the new key signs
    assert unsubscribe_token_of(settings(tmp_path, secret_key=new), token) is None
    assert unsubscribe_token_of(before, token[:-2] + "xx") is None
    assert unsubscribe_token_of(before, "tok-1") is None
    assert not (tmp_path / "home" / KEY_FILE).exists()


def test_without_a_secret_key_a_key_file_is_made_once(tmp_path) -> None:
    config = settings(tmp_path, public_url="https://b.example.org/")
    url = preferences_url(config, "tok-2")
    assert url is not None and url.startswith("https://b.example.org/preferences/")
    key_file = tmp_path / "home" / KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert preferences_url(config, "tok-2") == url  # the same key, read back
    assert unsubscribe_token_of(config, url.rsplit("/", 1)[1]) == "tok-2"
    assert preferences_url(settings(tmp_path), "tok-2") is None  # no public URL, no link
    key_file.write_text("")
    with pytest.raises(ConfigError, match="holds no usable key"):
        preferences_token(config, "tok-2")
