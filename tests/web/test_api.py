"""The HTTP API over real HTTP on 127.0.0.1, against SQLite and PostgreSQL: the token,
subscriptions, test messages, sends, the delivery log, previews, the state."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from bot.store import outbox, states
from bot.store import subscriptions as subs
from tests.conftest import SEED_STATE
from tests.receivers import reply
from tests.web.conftest import TOKEN, api_client, api_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM = "application/problem+json"


@pytest.fixture
async def api(db, tmp_path):
    async with api_client(db, api_settings(tmp_path)) as client:
        yield client, db


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


async def operations(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document, path parameters filled with 1."""
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    found = []
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        found += [(method.upper(), concrete) for method in item if method != "parameters"]
    return found


async def test_every_route_needs_the_token(api) -> None:
    client, _ = api
    routes = await operations(client)
    assert len(routes) >= 22 and ("POST", "/api/v1/subscriptions/1/test") in routes
    assert {("PATCH", "/api/v1/state/developments/1"), ("POST", "/api/v1/review/1/accept")} <= set(
        routes
    )
    routes.append(("GET", "/openapi.json"))
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                answer = await anonymous.request(method, path, headers=headers, json={})
                body = problem(answer, 401)
                assert answer.headers["www-authenticate"].startswith("Bearer"), (method, path)
                assert "token" in body["detail"]
        # and what stays public
        assert (await anonymous.get("/healthz")).status_code == 200
        assert (await anonymous.get("/metrics")).status_code == 200
        assert (await anonymous.get("/unsubscribe/nope")).status_code == 404


async def test_with_no_token_set_the_api_is_off_and_says_so(db, tmp_path) -> None:
    async with api_client(db, api_settings(tmp_path, api_token=None), headers={}) as client:
        for path in ("/api/v1/subscriptions", "/openapi.json", "/api/v1/state"):
            body = problem(await client.get(path, headers=AUTH), 404)
            assert "BRIEFING_API_TOKEN" in body["detail"]
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_a_webhook_subscription_from_creation_to_removal(api, receiver) -> None:
    client, db = api
    url = receiver.on("/hook", reply(200, "thanks"))
    made = await client.post(
        "/api/v1/subscriptions",
        json={"address": url, "topics": ["military", "talks"], "locale": "fr",
              "timezone": "Europe/Paris", "at": "08:30", "name": "desk", "skip_empty": True},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    created = made.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["kind"] == "generic"
    assert created["cron"] == "30 8 * * *" and created["topics"] == ["military", "talks"]
    assert created["next"].endswith("+01:00") and created["status"] == "active"
    sid = created["id"]
    shown = (await client.get(f"/api/v1/subscriptions/{sid}")).json()
    assert secret not in json.dumps(shown) and shown["secrets"] == [created["secrets"][0]]
    assert shown["deliveries"] == [] and "secret" not in shown

    changed = await client.patch(
        f"/api/v1/subscriptions/{sid}", json={"topics": "all", "cron": "0 7 * * 1-5"}
    )
    assert changed.status_code == 200 and changed.json()["topics"] is None
    assert (await subs.get(db, sid)).cron == "0 7 * * 1-5"

    tested = await client.post(f"/api/v1/subscriptions/{sid}/test")
    assert tested.status_code == 200, tested.text
    result = tested.json()
    assert result["ok"] and result["status"] == 200 and result["answer"] == "thanks"
    (hit,) = receiver.hits("/hook")
    assert Webhook(secret).verify(hit.body, hit.headers)["digest"]["locale"] == "fr"

    paused = await client.post(f"/api/v1/subscriptions/{sid}/pause", json={"reason": "holiday"})
    assert paused.json()["status"] == "paused" and paused.json()["reason"] == "holiday"
    listed = (await client.get("/api/v1/subscriptions", params={"status": "paused"})).json()
    assert [s["id"] for s in listed["items"]] == [sid]
    resumed = await client.post(f"/api/v1/subscriptions/{sid}/resume")
    assert resumed.json()["status"] == "active" and resumed.json()["next"]
    removed = await client.delete(f"/api/v1/subscriptions/{sid}")
    assert removed.json()["status"] == "removed"
    problem(await client.post(f"/api/v1/subscriptions/{sid}/test"), 404)
    assert (await client.get(f"/api/v1/subscriptions/{sid}")).json()["status"] == "removed"
    everything = await client.get("/api/v1/subscriptions", params={"status": ["removed"]})
    assert [s["id"] for s in everything.json()["items"]] == [sid]


async def test_subscriptions_are_checked_as_the_cli_checks_them(db, tmp_path) -> None:
    settings = api_settings(tmp_path, allow_private_targets=False)
    async with api_client(db, settings) as client:
        new = "/api/v1/subscriptions"
        ssrf = problem(await client.post(new, json={"address": "https://127.0.0.1/hook"}), 422)
        assert "127.0.0.1" in ssrf["detail"]
        plain = problem(await client.post(new, json={"address": "http://example.org/x"}), 422)
        assert "https" in plain["detail"]
        topic = problem(
            await client.post(new, json={"address": "a@example.org", "topics": ["cooking"]}),
            422,
        )
        assert "cooking" in topic["detail"]
        zone = problem(
            await client.post(new, json={"address": "a@example.org", "timezone": "Mars/Olympus"}),
            422,
        )
        assert "Mars/Olympus" in zone["detail"]
        both = problem(
            await client.post(
                new, json={"address": "a@example.org", "at": "07:00", "cron": "* * * * *"}
            ),
            422,
        )
        assert "--at or --cron" in both["detail"] or "not both" in both["detail"]
        typed = problem(await client.post(new, json={"address": 5, "colour": "red"}), 422)
        assert {tuple(e["loc"]) for e in typed["errors"]} >= {
            ("body", "address"),
            ("body", "colour"),
        }
        unknown = problem(await client.get("/api/v1/subscriptions/999"), 404)
        assert "999" in unknown["detail"]
        problem(await client.get("/api/v1/subscriptions/0"), 422)
    assert await subs.list_all(db) == []


async def test_paging_and_filters(api) -> None:
    client, _ = api
    for n in range(5):
        made = await client.post(
            "/api/v1/subscriptions",
            json={"address": f"r{n}@example.org", "topics": ["talks"] if n % 2 else None},
        )
        assert made.status_code == 201, made.text
    first = (await client.get("/api/v1/subscriptions", params={"limit": 2})).json()
    assert [s["id"] for s in first["items"]] == [1, 2] and first["next"]
    second = (await client.get(first["next"])).json()
    assert [s["id"] for s in second["items"]] == [3, 4]
    last = (await client.get(second["next"])).json()
    assert [s["id"] for s in last["items"]] == [5] and last["next"] is None
    military = (await client.get("/api/v1/subscriptions", params={"topic": "military"})).json()
    assert [s["id"] for s in military["items"]] == [1, 3, 5]  # all topics include it
    assert (await client.get("/api/v1/subscriptions", params={"kind": "slack"})).json()[
        "items"
    ] == []


async def test_a_send_answers_at_once_with_deliveries_to_poll(api) -> None:
    client, db = api
    for address in ("a@example.org", "b@example.org"):
        assert (
            await client.post("/api/v1/subscriptions", json={"address": address})
        ).status_code == 201
    await client.post("/api/v1/subscriptions/2/pause")
    one = await client.post("/api/v1/sends", json={"subscriptions": [1]})
    assert one.status_code == 202, one.text
    queued = one.json()
    polled = (await client.get(queued["poll"])).json()["items"]
    assert [d["id"] for d in polled] == queued["deliveries"]
    assert polled[0]["status"] == "pending" and polled[0]["trigger"] == "manual"
    refused = problem(await client.post("/api/v1/sends", json={"subscriptions": [2]}), 422)
    assert "paused" in refused["detail"]
    forced = await client.post("/api/v1/sends", json={"subscriptions": [2], "force": True})
    assert forced.status_code == 202
    (forced_row,) = await outbox.listing(db, ids=forced.json()["deliveries"])
    assert forced_row.trigger == "forced"
    everyone = (await client.post("/api/v1/sends", json={"all": True})).json()
    assert len(everyone["deliveries"]) == 1  # the paused one is left out
    problem(await client.post("/api/v1/sends", json={}), 422)
    problem(await client.post("/api/v1/sends", json={"subscriptions": [1], "all": True}), 422)
    problem(await client.post("/api/v1/sends", json={"subscriptions": [99]}), 404)
    assert len(await outbox.listing(db)) == 3


async def test_the_delivery_log_with_filters_and_attempts(api) -> None:
    client, db = api
    await client.post("/api/v1/subscriptions", json={"address": "a@example.org"})
    await client.post("/api/v1/subscriptions", json={"address": "b@example.org"})
    for moment in ("2025-12-01T07:00:00+00:00", "2025-12-02T07:00:00+00:00"):
        await outbox.queue_manual(db, now=datetime.fromisoformat(moment))
    (row,) = await outbox.listing(
        db, subscription_id=1, period=datetime(2025, 12, 2, 7, tzinfo=UTC)
    )
    async with db.engine.begin() as conn:
        await conn.execute(
            outbox.deliveries.update().where(outbox.deliveries.c.id == row.id).values(
                status="dead", attempts=8, last_status="410", last_answer="gone"
            )
        )  # fmt: skip
    log = (await client.get("/api/v1/deliveries")).json()["items"]
    assert len(log) == 4 and log[0]["period"] > log[-1]["period"]
    dead = (await client.get("/api/v1/deliveries", params={"status": "dead"})).json()["items"]
    assert [(d["id"], d["attempts"], d["last_status"], d["answer"]) for d in dead] == [
        (row.id, 8, 410, "gone")
    ]
    mine = await client.get("/api/v1/deliveries", params={"subscription": 2, "since": "2025-12-02"})
    assert [(d["subscription"], d["period"][:10]) for d in mine.json()["items"]] == [
        (2, "2025-12-02")
    ]
    before = await client.get(
        "/api/v1/deliveries", params={"until": "2025-12-02T00:00Z", "limit": 1}
    )
    assert len(before.json()["items"]) == 1 and before.json()["next"]
    assert (await client.get(f"/api/v1/deliveries/{row.id}")).json()["status"] == "dead"
    problem(await client.get("/api/v1/deliveries/12345"), 404)
    bad = problem(await client.get("/api/v1/deliveries", params={"since": "yesterday"}), 422)
    assert "since" in bad["detail"]


async def test_preview_and_state(api) -> None:
    client, db = api
    params = {"now": "2025-12-02T18:00Z", "timezone": "Europe/Paris", "locale": "fr"}
    text = await client.get("/api/v1/preview", params=params)
    assert text.headers["content-type"].startswith("text/plain") and "Pokrovsk" in text.text
    html = await client.get("/api/v1/preview", params={**params, "format": "html"})
    assert html.headers["content-type"].startswith("text/html") and "<html" in html.text
    slack = await client.get("/api/v1/preview", params={**params, "format": "slack"})
    assert slack.headers["content-type"] == "application/json" and slack.json()
    digest = (
        await client.get(
            "/api/v1/preview", params={**params, "format": "json", "topics": "military"}
        )
    ).json()
    assert digest["locale"] == "fr"
    problem(await client.get("/api/v1/preview", params={"format": "pdf"}), 422)
    problem(await client.get("/api/v1/preview", params={"topics": "cooking"}), 422)
    problem(await client.get("/api/v1/state"), 404)
    imported = await states.import_state(db, SEED_STATE, now=datetime.now(UTC))
    state = (await client.get("/api/v1/state")).json()
    assert state["revision"] == imported.revision
    assert any(d["id"] for d in state["state"]["developments"])


async def test_the_egress_allowlist_refuses_targets_elsewhere(db, tmp_path, receiver) -> None:
    url = receiver.on("/hook")
    settings = api_settings(tmp_path, egress_allowlist="10.0.0.0/8")
    async with api_client(db, settings) as client:
        refused = problem(await client.post("/api/v1/subscriptions", json={"address": url}), 422)
        assert "BRIEFING_EGRESS_ALLOWLIST" in refused["detail"]
    assert receiver.hits("/hook") == [] and await subs.list_all(db) == []


async def test_metrics_may_ask_for_their_own_token(db, tmp_path) -> None:
    settings = api_settings(tmp_path, metrics_token="m3trics")
    async with api_client(db, settings, headers={}) as client:
        problem(await client.get("/metrics"), 401)
        problem(await client.get("/metrics", headers=AUTH), 401)  # the API's token is not it
        scraped = await client.get("/metrics", headers={"Authorization": "Bearer m3trics"})
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    for name in (
        "briefing_deliveries_total", "briefing_send_duration_seconds", "briefing_queue_rows",
        "briefing_queue_oldest_due_age_seconds", "briefing_scheduler_last_tick_timestamp_seconds",
    ):  # fmt: skip
        assert f"# TYPE {name}" in scraped.text


async def test_a_method_a_path_does_not_serve_names_those_it_does(api) -> None:
    client, _ = api
    refused = await client.put("/api/v1/subscriptions/1")
    problem(refused, 405)
    assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
