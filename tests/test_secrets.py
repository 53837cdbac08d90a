"""Secrets stay secret: never shown whole (listings, errors, logs, JSON), encrypted at rest
with BRIEFING_SECRET_KEY, re-encrypted by ``briefing secrets rotate``, private files."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import stat
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp import web
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from bot.crypto import Keyring, new_key
from bot.delivery import render_message
from bot.digest import DigestRenderer, ReaderOptions, Window, compose
from bot.errors import ConfigError
from bot.outputs import Envelope, Target, make_context
from bot.outputs.webhooks import GenericWebhookOutput, new_secret
from bot.settings import Settings
from bot.store import subscriptions as subs
from bot.store.database import Database
from tests.dbs import database_url
from tests.processes import bot_env, briefing, cli, start, wait_for
from tests.receivers import Behaviour

NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
POSITIONS = ("only", "first", "last", "query", "userinfo")


def echo(status: int) -> Behaviour:
    """Answer ``status`` quoting the request's URL, as many error pages do."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=status, text=f"no hook at {request.path_qs} ({request.url}) {request.query}"
        )

    return behaviour


def shaped(base: str, position: str, mode: str) -> tuple[str, str]:
    """A URL to the receiver at ``base`` with a fresh canary token in ``position``;
    (url, token)."""
    token = f"{position.upper()}CANARY{mode.upper()}{uuid.uuid4().hex[:10]}"
    host = base.removeprefix("http://")
    url = {
        "only": f"{base}/{token}",
        "first": f"{base}/{token}/notify",
        "last": f"{base}/hooks/{mode}/{token}",
        "query": f"{base}/q/{mode}?token={token}",
        "userinfo": f"http://user:{token}@{host}/u/{mode}",
    }[position]
    return url, token


def new_sub(
    address: str, secrets: tuple[str, ...] = (), kind: str = "generic"
) -> subs.NewSubscription:
    return subs.NewSubscription(
        name="n", kind=kind, address=address, secrets=secrets, topics=None, locale="en",
        timezone="UTC", cron="0 7 * * *", skip_empty=False, next_fire_at=NOW,
    )  # fmt: skip


def leaks(tokens: Iterable[str], *texts: str) -> list[str]:
    return [t for t in tokens if any(t in x for x in texts)]


# --- at rest, in the store (SQLite and PostgreSQL) ---


async def raw_rows(db: Database) -> str:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM subscriptions"))).all()
    return repr(rows)


async def test_urls_and_secrets_are_encrypted_at_rest_and_read_in_the_clear(db) -> None:
    db.keyring = Keyring.from_setting(new_key())
    url = f"https://hooks.example.org/services/T0/CANARYURL{uuid.uuid4().hex}"
    secret = new_secret()
    hook = await subs.add(db, new_sub(url, (secret,)), now=NOW)
    mail = await subs.add(db, new_sub("reader@example.org", kind="email"), now=NOW)
    stored = await raw_rows(db)
    assert url not in stored and "CANARYURL" not in stored and secret not in stored
    assert secret[6:] not in stored and "fernet:" in stored
    assert "reader@example.org" in stored  # an email address is the target, not a secret
    assert (hook.address, hook.secrets) == (url, (secret,))
    assert [(s.address, s.secrets) for s in await subs.list_all(db)] == [
        (url, (secret,)),
        ("reader@example.org", ()),
    ]
    (recipient,) = await subs.recipients(db, [hook.id])
    assert (recipient.address, recipient.secrets) == (url, (secret,))
    assert (await subs.by_token(db, mail.unsubscribe_token)) == mail
    await subs.update_fields(db, hook.id, now=NOW, secrets=[secret, new_secret()])
    assert secret not in await raw_rows(db) and (await subs.get(db, hook.id)).secrets[0] == secret


async def test_rotation_keeps_everything_readable_and_signatures_valid(
    db, receiver, seed_state
) -> None:
    a, b = new_key(), new_key()
    clear_url, sealed_url = receiver.on("/clear/CANARYCLEAR01"), receiver.on("/a/CANARYSEALED2")
    clear_secret, sealed_secret = new_secret(), new_secret()
    clear = await subs.add(db, new_sub(clear_url, (clear_secret,)), now=NOW)  # before any key
    await subs.add(db, new_sub("reader@example.org", kind="email"), now=NOW)
    db.keyring = Keyring.from_setting(a)
    sealed = await subs.add(db, new_sub(sealed_url, (sealed_secret,)), now=NOW)
    assert await subs.in_the_clear(db) == 1
    assert await subs.reseal(db) == 1 and await subs.reseal(db) == 0  # clear ones, then none
    assert await subs.in_the_clear(db) == 0
    before = await raw_rows(db)
    assert "CANARY" not in before and clear_secret not in before

    db.keyring = Keyring.from_setting(f"{b},{a}")
    assert await subs.reseal(db, batch=1) == 2 and await subs.reseal(db) == 0
    db.keyring = Keyring.from_setting(b)
    found = {s.id: s for s in await subs.recipients(db, [clear.id, sealed.id])}
    assert (found[clear.id].address, found[clear.id].secrets) == (clear_url, (clear_secret,))
    assert (found[sealed.id].address, found[sealed.id].secrets) == (sealed_url, (sealed_secret,))

    settings = Settings(allow_private_targets=True)
    context = make_context(settings)
    output = GenericWebhookOutput(context)
    digest = compose(seed_state, ReaderOptions(), Window.ending(NOW))
    message = render_message(DigestRenderer(), digest, GenericWebhookOutput)
    try:
        for sub, secret in ((found[clear.id], clear_secret), (found[sealed.id], sealed_secret)):
            target = Target(kind=sub.kind, address=sub.address, secrets=sub.secrets)
            await output.send(target, message, envelope=Envelope(f"dlv_{sub.id}"))
            request = receiver.hits(urlsplit(sub.address).path)[-1]
            Webhook(secret).verify(request.body, request.headers)
    finally:
        await output.aclose()
        await context.aclose()

    db.keyring = Keyring.from_setting(a)  # the old key alone no longer reads anything
    with pytest.raises(ConfigError, match="BRIEFING_SECRET_KEY") as caught:
        await subs.get(db, sealed.id)
    assert f"subscription {sealed.id}" in str(caught.value)
    with pytest.raises(ConfigError, match=f"subscription {clear.id}"):
        await subs.recipients(db, [clear.id])
    with pytest.raises(ConfigError, match="BRIEFING_SECRET_KEY"):
        await subs.check_keys(db)
    db.keyring = Keyring()
    with pytest.raises(ConfigError, match="BRIEFING_SECRET_KEY is not set"):
        await subs.list_all(db)


# --- files ---


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_the_database_file_is_private(tmp_path) -> None:
    previous = os.umask(0o022)
    try:
        db = await Database.open(f"sqlite:///{tmp_path / 'briefing.db'}")
        try:
            await subs.add(db, new_sub("reader@example.org", kind="email"), now=NOW)
            wal = tmp_path / "briefing.db-wal"
            assert not wal.exists() or mode(wal) == 0o600
        finally:
            await db.close()
    finally:
        os.umask(previous)
    assert mode(tmp_path / "briefing.db") == 0o600


async def test_the_data_directory_the_bot_makes_is_private(tmp_path) -> None:
    env = bot_env(tmp_path, BRIEFING_HOME=str(tmp_path / "home"))
    del env["BRIEFING_DATABASE_URL"], env["BRIEFING_MAIL_DIR"]
    code, out, err = await cli("send", "--to", "reader@example.org", env=env)
    assert code == 0, err
    code, out, err = await cli("subscriptions", "list", env=env)
    assert code == 0, err
    assert mode(tmp_path / "home") == 0o700 and mode(tmp_path / "home" / "briefing.db") == 0o600
    assert mode(tmp_path / "home" / "mail") == 0o700
    assert all(mode(p) == 0o600 for p in (tmp_path / "home" / "mail").iterdir())


# --- the migration that takes tokens out of default names ---


async def test_default_names_made_from_urls_lose_their_token(tmp_path) -> None:
    from alembic import command
    from alembic.config import Config

    from bot.store.database import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = await Database.open(url, migrate=False)

    def to_0003(connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")

    named = [
        (
            "http://127.0.0.1:18081/SINGLESEGMENTCANARY5",
            "http://127.0.0.1:18081/SINGLESEGMENTCANARY5",
        ),
        ("https://h.example/FIRSTSEGTOKEN7/notify", "https://h.example/FIRSTSEGTOKEN7/…tify"),
        ("https://h.example/services/T/B/XYZ", "newsroom"),
    ]
    async with old.engine.begin() as conn:
        await conn.run_sync(to_0003)
        for n, (address, name) in enumerate(named):
            await conn.execute(
                text(
                    "INSERT INTO subscriptions (name, kind, address, secrets, locale, timezone,"
                    " cron, skip_empty, status, unsubscribe_token, created_at, updated_at) VALUES"
                    " (:name, 'slack', :address, '[]', 'en', 'UTC', '0 7 * * *', 0, 'active', :tok,"
                    " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                ),
                {"name": name, "address": address, "tok": f"t{n}"},
            )
    await old.close()
    db = await Database.open(url)
    try:
        names = [s.name for s in await subs.list_all(db)]
    finally:
        await db.close()
    assert names == ["slack webhook on 127.0.0.1", "slack webhook on h.example", "newsroom"]


# --- the CLI, end to end ---


@pytest.mark.slow
async def test_no_command_shows_a_token_whatever_its_place_in_the_url(tmp_path, receiver) -> None:
    env = bot_env(tmp_path, BRIEFING_SECRET_KEY=new_key())
    ok = {p: shaped(receiver.base, p, "ok") for p in POSITIONS}
    ko = {p: shaped(receiver.base, p, "ko") for p in POSITIONS}
    tokens = [token for _, token in (*ok.values(), *ko.values())]
    bad_ports = [f"http://127.0.0.1:99999/{t}" for t in tokens[:2]] + [
        f"https://hooks.slack.com:99999/services/T0/B0/{tokens[2]}"
    ]
    for url, _ in ok.values():
        receiver.on(urlsplit(url).path, echo(200))
    for url, _ in ko.values():
        receiver.on(urlsplit(url).path, echo(404))
    seen: list[tuple[tuple[str, ...], int, str, str]] = []
    slots = asyncio.Semaphore(1)  # one command at a time: each runs in this process

    async def run(*args: str) -> tuple[int, str, str]:
        async with slots:
            code, out, err = await cli(*args, env=env)
        seen.append((args, code, out, err))
        assert not leaks(tokens, out, err), (args, out, err)
        assert "Traceback" not in err, err
        return code, out, err

    assert (await run("subscriptions", "list"))[0] == 0  # the database made once, first
    results = await asyncio.gather(
        *(run("subscribe", "webhook", url, "--kind", kind, *fmt)
          for url, _ in ko.values()
          for kind, fmt in (("generic", ()), ("mattermost", ("--json",))))
    )  # fmt: skip
    assert [code for code, _, _ in results].count(2) == 2  # user information is refused
    names = {json.loads(out)["name"] for code, out, _ in results if code == 0 and "{" in out}
    assert names == {"mattermost webhook on 127.0.0.1"}
    listed = json.loads((await run("subscriptions", "list", "--json"))[1])
    ids = [str(s["id"]) for s in listed]
    assert len(ids) == 8 and all(s["target"].startswith(receiver.base) for s in listed)

    code, out, err = await run("send", *(x for i in ids for x in ("--subscription", i)))
    assert code == 1 and "404" in out
    code, out, err = await run("send", "--json", *(x for i in ids for x in ("--subscription", i)))
    answers = [d["answer"] for d in json.loads(out)["deliveries"]]
    assert code == 1 and all(a.startswith("HTTP 404: no hook at") for a in answers), answers

    await asyncio.gather(
        run("subscriptions", "list"),
        run("deliveries"),
        run("deliveries", "--json"),
        *(run("subscriptions", "show", str(sub["id"]), *(("--json",) if n % 2 else ()))
          for n, sub in enumerate(sorted(listed, key=lambda sub: sub["target"]))),  # each URL
        *(run("send", "--to", url) for url, _ in ok.values()),
        *(run("send", "--to", url, "--json") for url, _ in ko.values()),
        *(run("send", "--to", url, "--kind", "slack") for url in bad_ports),
        run("send", "--to", f"127.0.0.1/hooks/{tokens[3]}"),  # no scheme
    )  # fmt: skip
    outcomes = {args: code for args, code, _, _ in seen}
    assert all(
        outcomes[("send", "--to", url)] == 0 for p, (url, _) in ok.items() if p != "userinfo"
    )
    assert all(outcomes[("send", "--to", url, "--json")] in (1, 2) for url, _ in ko.values())
    assert any("invalid URL http://127.0.0.1:99999/…" in err for *_, err in seen)
    assert any("--to '127.0.0.1/…" in err for *_, err in seen)

    db = await Database.open(env["BRIEFING_DATABASE_URL"])
    try:
        for sub_id in ids:
            await subs.update_fields(db, int(sub_id), now=NOW, next_fire_at=datetime.now(UTC))
    finally:
        await db.close()
    for url, _ in ko.values():
        receiver.on(urlsplit(url).path, echo(500))
    log = tmp_path / "run.log"
    process = await start("run", env=env, log=log)
    try:
        await wait_for(lambda: log.read_text().count("attempt 1 failed") >= 8, timeout=180)
    finally:
        process.send_signal(signal.SIGTERM)
        # the drain lets sends in flight finish for up to 25 s
        async with asyncio.timeout(60):
            assert await process.wait() == 0
    logged = log.read_text()
    assert "next: subscription" in logged and "HTTP 500: no hook at" in logged
    assert not leaks(tokens, logged), logged

    database = tmp_path / "briefing.db"
    with sqlite3.connect(database) as conn:
        rows = repr(conn.execute("SELECT * FROM subscriptions").fetchall())
        rows += repr(conn.execute("SELECT * FROM deliveries").fetchall())
    assert not leaks(tokens, rows)
    files = [database, *tmp_path.glob("briefing.db-*")]
    assert not leaks(tokens, *(f.read_bytes().decode("latin-1") for f in files))


async def read_stored(kind: str, url: str) -> str:
    """Every subscription column, read without the bot (sqlite3 or asyncpg)."""
    if kind == "sqlite":
        with sqlite3.connect(urlsplit(url).path) as conn:
            return repr(conn.execute("SELECT * FROM subscriptions").fetchall())
    conn = await asyncpg.connect(url)
    try:
        return repr([dict(r) for r in await conn.fetch("SELECT * FROM subscriptions")])
    finally:
        await conn.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_rotating_from_one_key_to_another_with_the_cli(tmp_path, receiver, kind) -> None:
    a, b = new_key(), new_key()
    async with database_url(kind, tmp_path) as url:
        env = bot_env(tmp_path, url)
        hook = receiver.on(f"/hooks/CANARYHOOK{uuid.uuid4().hex}")
        code, out, err = await cli("subscribe", "webhook", hook, "--json", env=env)
        assert code == 0, err
        secret = json.loads(out)["secret"]
        assert hook in await read_stored(kind, url)  # no key: stored as given

        env["BRIEFING_SECRET_KEY"] = a
        code, out, err = await cli("secrets", "rotate", env=env)
        assert (code, out.strip()) == (
            0,
            "1 subscription(s) re-encrypted under the first key of BRIEFING_SECRET_KEY",
        ), err
        code, out, err = await cli(
            "subscribe", "webhook", receiver.on("/second/CANARYSECOND"), "--kind", "slack", env=env
        )
        assert code == 0, err
        stored = await read_stored(kind, url)
        assert "CANARY" not in stored and secret not in stored and secret[6:] not in stored

        env["BRIEFING_SECRET_KEY"] = f"{b},{a}"
        code, out, err = await cli("secrets", "rotate", "--json", env=env)
        assert code == 0 and json.loads(out) == {"changed": 2}, err
        env["BRIEFING_SECRET_KEY"] = b
        code, out, err = await cli("secrets", "rotate", "--json", env=env)
        assert code == 0 and json.loads(out) == {"changed": 0}, err
        code, out, err = await cli("send", "--subscription", "1", "--subscription", "2", env=env)
        assert code == 0, err
        (request,) = receiver.hits(urlsplit(hook).path)
        Webhook(secret).verify(request.body, request.headers)
        assert len(receiver.hits("/second/CANARYSECOND")) == 1

        env["BRIEFING_SECRET_KEY"] = a
        code, out, err = await cli("subscriptions", "list", env=env)
        assert code == 2 and "Traceback" not in err
        assert "subscription 1" in err and "BRIEFING_SECRET_KEY" in err


@pytest.mark.slow
async def test_key_mistakes_stop_the_bot_with_a_message(tmp_path, receiver) -> None:
    env = bot_env(tmp_path, BRIEFING_SECRET_KEY=new_key())
    code, out, err = await cli("subscribe", "webhook", receiver.on("/x/CANARYKEYS"), env=env)
    assert code == 0, err
    mistakes = (
        ("not-a-key", "BRIEFING_SECRET_KEY: the key is not a Fernet key"),
        (f"{new_key()},oops", "BRIEFING_SECRET_KEY: key 2 of 2 is not a Fernet key"),
        (new_key(), "the webhook URL of subscription 1 cannot be decrypted with any key in "
         "BRIEFING_SECRET_KEY"),
        ("", "the webhook URL of subscription 1 is encrypted, but BRIEFING_SECRET_KEY is not set"),
    )  # fmt: skip
    # ``run`` as real processes, side by side; the listing in this process.
    runs = await asyncio.gather(
        *(
            briefing("run", env={**env, "BRIEFING_SECRET_KEY": key}, timeout=60)
            for key, _ in mistakes
        )
    )
    for (key, message), ran in zip(mistakes, runs, strict=True):
        listed = await cli("subscriptions", "list", env={**env, "BRIEFING_SECRET_KEY": key})
        for command, (code, out, err) in ((("run",), ran), (("subscriptions", "list"), listed)):
            assert code == 2 and message in err and "Traceback" not in err, (command, err)
            assert "oops" not in err and "CANARYKEYS" not in out + err


@pytest.mark.slow
async def test_run_says_when_secrets_are_stored_in_the_clear(tmp_path) -> None:
    env = bot_env(tmp_path)
    log = tmp_path / "run.log"
    process = await start("run", env=env, log=log)
    try:
        await wait_for(lambda: b"running (worker" in log.read_bytes(), timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    (line,) = [x for x in log.read_text().splitlines() if "BRIEFING_SECRET_KEY" in x]
    assert "stored in the clear" in line and "briefing secrets key" in line


async def test_secrets_key_prints_a_fresh_key(tmp_path) -> None:
    code, out, err = await cli("secrets", "key", env=bot_env(tmp_path))
    assert code == 0 and Keyring.from_setting(out.strip()).enabled
    code, out, err = await cli("secrets", "rotate", env=bot_env(tmp_path))
    assert code == 2 and "BRIEFING_SECRET_KEY is not set" in err
