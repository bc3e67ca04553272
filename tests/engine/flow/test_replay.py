"""Replaying a function's runs over a time range: new runs, same events, really re-executed by the SDK."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import inngest
import pytest
from tests.harness.engine import sdk_stack
from tests.polling import wait_for

State = dict[str, Any]


def _functions(client: Any, state: State) -> list[Any]:
    @client.create_function(fn_id="replayable", trigger=inngest.TriggerEvent(event="rp/go"), retries=0)
    async def replayable(ctx: inngest.Context) -> Any:
        tag = ctx.event.data.get("tag", "")

        async def step() -> str:
            state["log"].add(f"a-{tag}")
            if ctx.event.data.get("fail"):
                raise inngest.NonRetriableError(f"asked to fail ({tag})")
            return "ok"

        return await ctx.step.run("a", step)

    @client.create_function(fn_id="bystander", trigger=inngest.TriggerEvent(event="rp/go"))
    async def bystander(ctx: inngest.Context) -> str:
        return "dispatched"

    return [replayable, bystander]


stack = sdk_stack("rp", _functions)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _replay(engine: Any, slug: str, body: Any, auth: bool = True) -> httpx.Response:
    return httpx.post(f"{engine.url}/v1/functions/{slug}/replay", json=body,
                      headers=engine.headers if auth else {}, timeout=10)


def _runs_of(engine: Any, event_id: str, slug: str) -> list[dict[str, Any]]:
    return [r for r in engine.get(f"/v1/events/{event_id}/runs").json()["data"] if r["function_slug"] == slug]


def _settled(engine: Any, event_id: str, slug: str, count: int) -> list[dict[str, Any]]:
    """The function's runs for the event once ``count`` of them have ended."""
    return wait_for(lambda: len(runs := [r for r in _runs_of(engine, event_id, slug)
                                         if r["status"] in ("Completed", "Failed")]) >= count and runs)


def test_replay_starts_a_new_run_with_the_same_event_for_each_run_in_the_range(
        stack: Any, send_event: Any, step_log: Any) -> None:
    engine, state, app_id = stack
    state["log"] = log = step_log()
    slug = f"{app_id}-replayable"
    start = _now() - datetime.timedelta(milliseconds=5)
    eids = [send_event(engine, "rp/go", {"tag": f"all-{i}"}) for i in range(2)]
    for eid in eids:
        _settled(engine, eid, slug, 1)
    end = _now()
    assert sorted(log.lines()) == ["a-all-0", "a-all-1"]

    r = _replay(engine, slug, {"from": start.isoformat(), "to": end.isoformat().replace("+00:00", "Z")})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["replayed"] == 2 and len(data["run_ids"]) == 2
    for eid in eids:
        runs = _settled(engine, eid, slug, 2)
        assert {run["status"] for run in runs} == {"Completed"}
        assert len(runs) == 2, "the original run and its replay, linked to the same event"
        assert len(_runs_of(engine, eid, f"{app_id}-bystander")) == 1, "only the named function is replayed"
    assert sorted(log.lines()) == ["a-all-0", "a-all-0", "a-all-1", "a-all-1"], "the steps really ran again"
    replayed_events = {engine.get(f"/v1/runs/{rid}").json()["data"]["event_id"] for rid in data["run_ids"]}
    assert replayed_events == set(eids)


def test_replay_with_a_status_filter_only_replays_matching_runs_and_nothing_outside_the_range(
        stack: Any, send_event: Any, step_log: Any) -> None:
    engine, state, app_id = stack
    state["log"] = log = step_log()
    slug = f"{app_id}-replayable"
    before = send_event(engine, "rp/go", {"tag": "early", "fail": True})
    _settled(engine, before, slug, 1)
    start = _now()
    ok = send_event(engine, "rp/go", {"tag": "ok"})
    bad = send_event(engine, "rp/go", {"tag": "bad", "fail": True})
    assert _settled(engine, ok, slug, 1)[0]["status"] == "Completed"
    assert _settled(engine, bad, slug, 1)[0]["status"] == "Failed"
    end = _now()

    r = _replay(engine, slug, {"from": start.isoformat(), "to": end.isoformat(), "status": ["Failed"]})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["replayed"] == 1
    assert [run["status"] for run in _settled(engine, bad, slug, 2)] == ["Failed", "Failed"]
    assert len(_runs_of(engine, ok, slug)) == 1, "a Completed run is not replayed when only Failed ones are asked"
    assert len(_runs_of(engine, before, slug)) == 1, "a run before 'from' is not replayed"
    assert sorted(log.lines()) == ["a-bad", "a-bad", "a-early", "a-ok"]


def test_an_empty_range_replays_nothing(stack: Any) -> None:
    engine, _, app_id = stack
    r = _replay(engine, f"{app_id}-replayable", {"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"})
    assert r.status_code == 200 and r.json() == {"data": {"replayed": 0, "run_ids": []}}


@pytest.mark.parametrize(("body", "says"), [
    ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "after"),
    ({"from": "yesterday", "to": "2026-11-01T00:00:00Z"}, "RFC 3339"),
    ({"from": "2026-11-01T00:00:00", "to": "2026-11-02T00:00:00Z"}, "time zone"),
    ({"to": "2026-11-01T00:00:00Z"}, "'from'"),
    ({"from": "2026-09-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "31 days"),
    ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "status": ["Exploded"]}, "status"),
    (["not", "an", "object"], "JSON object"),
])
def test_a_bad_request_answers_400_with_what_and_how_to_fix(stack: Any, body: Any, says: str) -> None:
    engine, _, app_id = stack
    r = _replay(engine, f"{app_id}-replayable", body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert says in err["error"] and err["code"] == "invalid_replay" and err["hint"]


def test_an_unknown_function_is_404_and_production_needs_the_bearer_key(stack: Any) -> None:
    engine, _, app_id = stack
    body = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}
    r = _replay(engine, "no-such-fn", body)
    assert r.status_code == 404 and "GET /v1/functions" in r.json()["hint"]
    if engine.mode == "production":
        assert _replay(engine, f"{app_id}-replayable", body, auth=False).status_code == 401


@pytest.mark.slow
def test_replayed_runs_survive_a_restart_before_they_run(engine_factory: Any, sdk_factory: Any, client_for: Any,
                                                         send_event: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    state: State = {"log": (log := step_log())}
    client = client_for(engine, app_id="rp-restart")
    sdk_factory(engine, client, _functions(client, state))
    slug = "rp-restart-replayable"
    start = _now() - datetime.timedelta(milliseconds=5)
    eid = send_event(engine, "rp/go", {"tag": "durable"})
    _settled(engine, eid, slug, 1)
    end = _now()
    # Paused, the replayed run is stored but cannot call the app before the engine stops.
    assert httpx.post(f"{engine.url}/v1/functions/{slug}/pause", headers=engine.headers, timeout=5).status_code == 200
    r = _replay(engine, slug, {"from": start.isoformat(), "to": end.isoformat()})
    assert r.status_code == 200 and r.json()["data"]["replayed"] == 1
    assert engine.stop() == 0
    engine.start()
    assert httpx.post(f"{engine.url}/v1/functions/{slug}/unpause", headers=engine.headers,
                      timeout=5).status_code == 200
    assert [run["status"] for run in _settled(engine, eid, slug, 2)] == ["Completed", "Completed"]
    assert log.count("a-durable") == 2
