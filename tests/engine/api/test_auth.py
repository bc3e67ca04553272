"""Production auth on a real ``agentcmd engine start``: event key, bearer, signed SDK traffic."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import inngest

from agentcmd.config.keys import hash_signing_key


def test_wrong_event_key_is_401_and_nothing_is_stored(engine_factory: Any) -> None:
    engine = engine_factory("production")
    r = httpx.post(f"{engine.url}/e/wrong-key", json={"name": "t/x", "data": {}}, timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "Event key not found"
    assert engine.get("/v1/events").json()["data"] == []
    ok = httpx.post(f"{engine.url}/e/{engine.event_key}", json=[{"name": "t/x"}, {"name": "t/y"}], timeout=5)
    assert ok.status_code == 200 and len(ok.json()["ids"]) == 2
    assert {e["name"] for e in engine.get("/v1/events").json()["data"]} == {"t/x", "t/y"}


def test_rest_graphql_and_register_need_the_bearer_health_does_not(engine_factory: Any) -> None:
    engine = engine_factory("production")
    for method, path in [("GET", "/v1/runs"), ("GET", "/v1/events"), ("GET", "/v1/runs/x"),
                         ("DELETE", "/v1/runs/x"), ("POST", "/v0/gql"), ("POST", "/fn/register"),
                         ("GET", "/v0/runs/x/actions")]:
        r = httpx.request(method, engine.url + path, json={}, timeout=5)
        assert r.status_code == 401, (method, path, r.text)
        r = httpx.request(method, engine.url + path, json={}, timeout=5,
                          headers={"Authorization": "Bearer " + "0" * 64})
        assert r.status_code == 401, (method, path, r.text)
    assert httpx.get(engine.url + "/health", timeout=5).status_code == 200
    hashed = {"Authorization": f"Bearer {hash_signing_key(engine.signing_key)}"}
    assert httpx.get(engine.url + "/v1/runs", headers=hashed, timeout=5).status_code == 200
    assert httpx.get(engine.url + "/v1/runs", headers=engine.headers, timeout=5).status_code == 200


def test_sdk_registration_without_the_key_is_rejected(engine_factory: Any) -> None:
    engine = engine_factory("production")
    body = {"appname": "intruder", "url": "http://127.0.0.1:1/api/inngest", "functions": []}
    r = httpx.post(f"{engine.url}/fn/register", json=body, timeout=5)
    assert r.status_code == 401
    wrong = hashlib.sha256(b"other").hexdigest()
    r = httpx.post(f"{engine.url}/fn/register", json=body, headers={"Authorization": f"Bearer {wrong}"}, timeout=5)
    assert r.status_code == 401
    assert engine.get("/v1/apps").json()["data"] == []


def test_expected_server_kind_mismatch_is_400(engine_factory: Any) -> None:
    engine = engine_factory("dev")
    r = httpx.post(f"{engine.url}/fn/register", json={"appname": "a", "url": "http://x/api", "functions": []},
                   headers={"X-Inngest-Expected-Server-Kind": "cloud"}, timeout=5)
    assert r.status_code == 400 and r.json() == {"error": "Expected server kind cloud, got dev"}


def test_an_sdk_in_dev_mode_cannot_sync_with_a_production_engine(
        engine_factory: Any, sdk_factory: Any, client_for: Any) -> None:
    engine = engine_factory("production")
    dev_client = inngest.Inngest(app_id="dev-app", is_production=False, api_base_url=engine.url,
                                 event_api_base_url=engine.url)

    @dev_client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="t/f"))
    async def f(ctx: inngest.Context) -> None:
        return None

    app = sdk_factory(engine, dev_client, [f], sync=False)
    r = httpx.put(app.url, json={"url": app.url}, headers={"X-Inngest-Server-Kind": "cloud"}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "server_kind_mismatch"
    assert engine.get("/v1/apps").json()["data"] == []


def test_production_calls_are_signed_and_the_sdk_accepts_them(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any) -> None:
    engine = engine_factory("production")
    client = client_for(engine)

    @client.create_function(fn_id="signed", trigger=inngest.TriggerEvent(event="t/signed"))
    async def signed(ctx: inngest.Context) -> str:
        return await ctx.step.run("s", lambda: "verified")

    sdk_factory(engine, client, [signed])
    [run_id] = runs_for_event(engine, send_event(engine, "t/signed"))
    assert wait_for_run_status(engine, run_id, "Completed")["output"] == "verified"
