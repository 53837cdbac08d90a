"""Masking URLs and secrets, whatever the URL's shape; the keyring that seals them at rest."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.crypto import PREFIX, Keyring, new_key
from bot.errors import ConfigError
from bot.outputs.network import TargetPolicy
from bot.redact import default_name, mask_secret, mask_target, mask_url, scrub

TOKEN = "CANARYTOKEN7x9"
SHAPES = {
    "only segment": f"https://hooks.example.org/{TOKEN}",
    "first segment": f"https://hooks.example.org/{TOKEN}/notify",
    "middle segment": f"https://hooks.example.org/api/{TOKEN}/x",
    "last segment": f"https://hooks.example.org/services/T0/B0/{TOKEN}",
    "query value": f"https://hooks.example.org/hook?token={TOKEN}",
    "query value, then another": f"https://hooks.example.org/hook?token={TOKEN}&v=1",
    "userinfo": f"https://user:{TOKEN}@hooks.example.org/hook",
    "user name": f"https://{TOKEN}@hooks.example.org/hook",
    "fragment": f"https://hooks.example.org/hook#{TOKEN}",
    "bad port": f"https://hooks.example.org:99999/services/{TOKEN}",
    "port that is not a number": f"https://hooks.example.org:{TOKEN}/x",
    "broken IPv6 host": f"https://[::1/{TOKEN}",
    "no host": f"https:///{TOKEN}",
    "no scheme": f"hooks.example.org/{TOKEN}",
    "encoded": f"https://hooks.example.org/a%2F{TOKEN}",
    "mailto URL with a password": f"mailto://user:{TOKEN}@gmail.com",
    # Apprise URLs: a token where an http URL has its host
    "Apprise token as host": f"pbul://{TOKEN}",
    "Apprise token as host, then path": f"tgram://{TOKEN}/-1001",
    "Apprise token as host, after a user": f"pover://userkey@{TOKEN}",
}


@pytest.mark.parametrize("url", SHAPES.values(), ids=SHAPES.keys())
def test_no_token_survives_masking_or_naming(url: str) -> None:
    shown = mask_url(url)
    assert TOKEN not in shown and TOKEN[:-4] not in shown
    assert TOKEN not in mask_target(url) and TOKEN not in default_name("generic", url)
    assert "…" not in shown or len(shown.rpartition("…")[2]) <= 4


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XXXXSECRETTOKEN", "https://hooks.slack.com/…OKEN"),
        ("http://127.0.0.1:18081/SINGLESEGMENTCANARY5", "http://127.0.0.1:18081/…ARY5"),
        ("http://127.0.0.1:18081/FIRSTSEGTOKEN7/notify", "http://127.0.0.1:18081/…ify"),
        ("https://h.example/hook?token=QUERYCANARY", "https://h.example/…NARY"),
        ("https://user:pw@h.example:8443/x", "https://h.example:8443/…"),
        ("https://[2001:db8::1]:8443/abcdefgh", "https://[2001:db8::1]:8443/…efgh"),
        ("https://h.example/services/abc/", "https://h.example/…"),
        ("https://h.example/ab", "https://h.example/…b"),
        ("https://h.example/a", "https://h.example/…"),
        ("https://h.example", "https://h.example"),
        ("https://h.example/", "https://h.example/"),
    ],
)
def test_a_masked_url_keeps_scheme_host_port_and_at_most_four_characters(
    url: str, shown: str
) -> None:
    assert mask_url(url) == shown


def test_email_addresses_are_shown_and_name_themselves() -> None:
    assert mask_target("reader@example.org") == "reader@example.org"
    assert default_name("email", "reader@example.org") == "reader@example.org"
    assert default_name("slack", "https://hooks.slack.com/services/T/B/X") == (
        "slack webhook on hooks.slack.com"
    )
    teams = "https://acme.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/SECRETPART"
    assert "SECRETPART" not in mask_target(teams) and "a@b" not in mask_target(teams)


def test_an_apprise_url_names_its_scheme_only() -> None:
    url = "pover://USERKEY0123456789@APPTOKEN0123456789"
    assert mask_target(url) == "pover://…6789"
    assert default_name("apprise", url) == "apprise target (pover://)"


def test_control_characters_never_reach_a_masked_url() -> None:
    assert "\n" not in mask_url("https://h.example\r\nX-Injected: 1/abc")


def test_secrets_are_masked_to_their_last_four_characters() -> None:
    secret = "whsec_" + "A" * 40 + "wxyz"
    assert mask_secret(secret) == "whsec_…wxyz" and mask_secret("whsec_short") == "whsec_…"


@pytest.mark.parametrize("url", SHAPES.values(), ids=SHAPES.keys())
def test_scrub_hides_a_url_and_its_pieces_in_free_text(url: str) -> None:
    answers = [
        f"cannot POST {url}: refused",
        f"404: no route for /{TOKEN}/notify",
        f"unknown token {TOKEN}",
        f"bad {TOKEN}&x",
    ]
    for answer in answers:
        assert TOKEN not in scrub(answer, url)
    assert scrub("ok", url) == "ok"


def test_scrub_leaves_email_and_short_words_alone() -> None:
    assert scrub("250 OK reader@example.org", "reader@example.org") == "250 OK reader@example.org"
    assert scrub("HTTP 500: oops", "https://h.example/services/T/B/LONGTOKEN1") == "HTTP 500: oops"


@pytest.mark.parametrize(
    "url",
    [
        f"https://hooks.example.org:99999/services/{TOKEN}",
        f"https://[::1/{TOKEN}",
        f"https:///{TOKEN}",
    ],
)
def test_url_errors_do_not_repeat_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TargetPolicy().check_url(url)
    assert TOKEN not in str(caught.value)


def test_a_keyring_seals_with_the_first_key_and_opens_with_any() -> None:
    a, b = new_key(), new_key()
    sealed = Keyring.from_setting(a).seal("https://h.example/TOKEN")
    assert sealed.startswith(PREFIX) and "TOKEN" not in sealed
    both = Keyring.from_setting(SecretStr(f" {b} , {a} "))
    assert both.open(sealed, what="x") == "https://h.example/TOKEN"
    resealed = both.reseal(sealed, what="x")
    assert resealed != sealed and both.reseal(resealed, what="x") == resealed
    assert Keyring.from_setting(b).open(resealed, what="x") == "https://h.example/TOKEN"
    assert both.open("https://clear.example/", what="x") == "https://clear.example/"
    assert both.reseal("clear", what="x").startswith(PREFIX)
    assert Keyring.from_setting(None).seal("clear") == "clear"
    assert not Keyring.from_setting("").enabled and not Keyring.from_setting(" , ").enabled


def test_a_value_no_key_opens_is_a_config_error_naming_the_setting() -> None:
    sealed = Keyring.from_setting(new_key()).seal("secret")
    for keyring in (Keyring.from_setting(new_key()), Keyring()):
        with pytest.raises(ConfigError, match="BRIEFING_SECRET_KEY") as caught:
            keyring.open(sealed, what="the webhook URL of subscription 7")
        assert "subscription 7" in str(caught.value)
    with pytest.raises(ConfigError, match="BRIEFING_SECRET_KEY"):
        Keyring().reseal("clear", what="x")


@pytest.mark.parametrize(
    "setting",
    ["not-a-key", "x" * 44, f"{Fernet.generate_key().decode()},nope"],
    ids=["not-base64", "wrong-length", "one-good-one-bad"],
)
def test_a_bad_key_is_a_config_error_that_never_shows_the_key(setting: str) -> None:
    with pytest.raises(ConfigError, match="BRIEFING_SECRET_KEY") as caught:
        Keyring.from_setting(setting)
    assert "nope" not in str(caught.value) and "not-a-key" not in str(caught.value)
