"""Pausing a function over REST: events start nothing, runs in progress stop before their next call, unpause resumes."""

from __future__ import annotations

import datetime
import time
from typing import Any

import httpx
import inngest
import pytest
from tests.harness.engine import sdk_stack
from tests.polling import wait_for

State = dict[str, Any]


def _functions(client: Any, state: State) -> list[Any]:
    @client.create_function(fn_id="pausable", trigger=inngest.TriggerEvent(event="p/go"))
    async def pausable(ctx: inngest.Context) -> Any:
        n = ctx.event.data.get("n", 0)

        async def step(name: str) -> str:
            state.setdefault("steps", []).append(f"{name}-{n}")
            return name

        await ctx.step.run("a", lambda: step("a"))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        return await ctx.step.run("b", lambda: step("b"))

    @client.create_function(fn_id="witness", trigger=inngest.TriggerEvent(event="p/go"))
    async def witness(ctx: inngest.Context) -> str:
        return "dispatched"

    return [pausable, witness]


stack = sdk_stack("pz", _functions)


def _post(engine: Any, path: str, auth: bool = True) -> httpx.Response:
    return httpx.post(engine.url + path, headers=engine.headers if auth else {}, timeout=5)


def _runs_by_function(engine: Any, event_id: str) -> dict[str, dict[str, Any]]:
    return {r["function_slug"]: r for r in engine.get(f"/v1/events/{event_id}/runs").json()["data"]}


def test_a_paused_function_is_not_started_by_events(stack: Any, send_event: Any) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-pausable"
    r = _post(engine, f"/v1/functions/{slug}/pause")
    assert r.status_code == 200 and r.json()["data"] == {"function_id": slug, "paused": True, "changed": True,
                                                         "resumed_calls": 0}
    try:
        eid = send_event(engine, "p/go", {"n": 1})
        runs = wait_for(lambda: (x := _runs_by_function(engine, eid)) and f"{app_id}-witness" in x and x)
        assert slug not in runs, "the event was dispatched; the paused function did not start"
    finally:
        assert _post(engine, f"/v1/functions/{slug}/unpause").status_code == 200
    eid = send_event(engine, "p/go", {"n": 2})
    runs = wait_for(lambda: (x := _runs_by_function(engine, eid)) and slug in x and x)
    assert runs[slug]["status"] in ("Queued", "Running", "Completed")


def test_a_run_in_progress_stops_while_paused_and_resumes(stack: Any, send_event: Any, runs_for_event: Any,
                                                          wait_for_run_status: Any) -> None:
    engine, state, app_id = stack
    slug = f"{app_id}-pausable"
    eid = send_event(engine, "p/go", {"n": 3})
    run_id = wait_for(lambda: _runs_by_function(engine, eid).get(slug))["run_id"]
    wait_for(lambda: "a-3" in state.get("steps", []))
    assert _post(engine, f"/v1/functions/{slug}/pause").status_code == 200
    # The run stops before its next call: the one that plans the 1 s sleep, or the one after
    # it. Step b must not run while paused: watch for longer than the sleep (an absence check).
    watch_until = time.monotonic() + 2.0
    while time.monotonic() < watch_until:
        assert "b-3" not in state["steps"]
        time.sleep(0.05)
    assert engine.get(f"/v1/runs/{run_id}").json()["data"]["status"] == "Running"
    r = _post(engine, f"/v1/functions/{slug}/unpause")
    assert r.status_code == 200 and r.json()["data"]["resumed_calls"] >= 1   # (the previous test's run may wait too)
    wait_for_run_status(engine, run_id, "Completed")
    assert state["steps"].count("b-3") == 1


def test_pause_answers_404_for_an_unknown_function_and_401_without_the_key(stack: Any) -> None:
    engine, _, _ = stack
    r = _post(engine, "/v1/functions/no-such-fn/pause")
    assert r.status_code == 404 and "GET /v1/functions" in r.json()["hint"]
    if engine.mode == "production":
        assert _post(engine, "/v1/functions/no-such-fn/pause", auth=False).status_code == 401


@pytest.mark.slow
def test_the_pause_survives_a_restart(engine_factory: Any, sdk_factory: Any, client_for: Any,
                                      send_event: Any) -> None:
    engine = engine_factory("production")
    state: State = {}
    client = client_for(engine, app_id="pz-restart")
    sdk_factory(engine, client, _functions(client, state))
    slug = "pz-restart-pausable"
    assert _post(engine, f"/v1/functions/{slug}/pause").status_code == 200
    assert engine.stop() == 0
    engine.start()
    eid = send_event(engine, "p/go", {"n": 9})
    runs = wait_for(lambda: (x := _runs_by_function(engine, eid)) and "pz-restart-witness" in x and x)
    assert slug not in runs
    assert _post(engine, f"/v1/functions/{slug}/unpause").json()["data"]["changed"] is True
