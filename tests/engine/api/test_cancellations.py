"""``POST /v1/cancellations`` and ``agentcmd functions cancel`` on a real engine with a real SDK app.

Runs that sleep (``step.sleep``) stay Running; the store-level details (one
transaction, the same history as a single cancel) are
tests/engine/flow/test_bulkcancel_unit.py; the step process group being
stopped is tests/workflows/test_bulk_cancel_e2e.py.
"""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import inngest
from tests.harness.engine import SIGNING_KEY, sdk_stack
from tests.harness.processes import run_cli
from tests.polling import wait_for

State = dict[str, Any]


def _functions(client: Any, state: State) -> list[Any]:
    @client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event="bc/go"), retries=0)
    async def napper(ctx: inngest.Context) -> str:
        if ctx.event.data.get("nap"):
            await ctx.step.sleep("nap", datetime.timedelta(hours=1))
        return "done"

    @client.create_function(fn_id="bystander", trigger=inngest.TriggerEvent(event="bc/other"), retries=0)
    async def bystander(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(hours=1))
        return "done"

    return [napper, bystander]


stack = sdk_stack("bc", _functions)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _run(engine: Any, event_id: str, status: str) -> str:
    """The one run of the event, once it has ``status``."""
    run: dict[str, Any] = wait_for(lambda: next((r for r in engine.get(f"/v1/events/{event_id}/runs").json()["data"]
                                                 if r["status"] == status), None), 20, f"a {status} run")
    return str(run["run_id"])


def _status(engine: Any, run_id: str) -> str:
    return str(engine.get(f"/v1/runs/{run_id}").json()["data"]["status"])


def _cancel(engine: Any, body: Any, auth: bool = True) -> httpx.Response:
    return httpx.post(f"{engine.url}/v1/cancellations", json=body, headers=engine.headers if auth else {},
                      timeout=10)


def test_only_the_functions_active_runs_in_the_range_are_cancelled_and_counted(stack: Any, send_event: Any) -> None:
    engine, _, app_id = stack
    early = _run(engine, send_event(engine, "bc/go", {"nap": True}), "Running")
    after = _now()
    napping = [_run(engine, send_event(engine, "bc/go", {"nap": True}), "Running") for _ in range(2)]
    done = _run(engine, send_event(engine, "bc/go", {}), "Completed")
    other = _run(engine, send_event(engine, "bc/other"), "Running")

    r = _cancel(engine, {"app_id": app_id, "function_id": "napper", "started_after": after,
                         "started_before": _now()})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["cancelled"] == 2 and sorted(data["run_ids"]) == sorted(napping)
    assert data["function_id"] == f"{app_id}-napper" and data["id"]
    assert [_status(engine, run) for run in napping] == ["Cancelled", "Cancelled"]
    assert [_status(engine, run) for run in (early, done, other)] == ["Running", "Completed", "Running"]
    history = [h["type"] for h in engine.get(f"/v1/runs/{napping[0]}/history").json()["data"]]
    assert history[-1] == "run_cancelled"

    again = _cancel(engine, {"app_id": app_id, "function_id": f"{app_id}-napper"})   # the slug works too; open range
    assert again.status_code == 200 and again.json()["data"]["run_ids"] == [early]
    assert _status(engine, early) == "Cancelled"
    assert _cancel(engine, {"app_id": app_id, "function_id": "bystander"}).json()["data"]["cancelled"] == 1
    assert _status(engine, other) == "Cancelled"


def test_bad_requests_are_400_or_404_and_production_needs_the_bearer(stack: Any) -> None:
    engine, _, app_id = stack
    r = _cancel(engine, {"app_id": app_id, "function_id": "napper", "if": "event.data.nap == true"})
    assert r.status_code == 400 and "'if' expression" in r.json()["error"] and r.json()["hint"]
    r = _cancel(engine, {"app_id": app_id, "function_id": "napper", "started_after": "tomorrow"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_cancellation"
    r = httpx.post(f"{engine.url}/v1/cancellations", content=b"{not json", headers=engine.headers, timeout=10)
    assert r.status_code == 400
    r = _cancel(engine, {"app_id": "other-app", "function_id": "napper"})
    assert r.status_code == 404 and "GET /v1/functions" in r.json()["hint"]
    unauth = _cancel(engine, {"app_id": app_id, "function_id": "napper"}, auth=False)
    assert unauth.status_code == (401 if engine.mode == "production" else 200)


def test_the_cli_cancels_and_prints_the_count(stack: Any, send_event: Any) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-napper"
    env = {"AGENTCMD_ENGINE_URL": engine.url}
    if engine.mode == "production":
        env["INNGEST_SIGNING_KEY"] = SIGNING_KEY
    running = [_run(engine, send_event(engine, "bc/go", {"nap": True}), "Running") for _ in range(2)]
    out = run_cli("functions", "cancel", slug, "--from", "1h", "--to", "now", env=env)
    assert out.returncode == 0, out.stderr
    assert f"{slug}: 2 run(s) cancelled" in out.stdout and set(running) <= set(out.stdout.split())
    assert [_status(engine, run) for run in running] == ["Cancelled", "Cancelled"]
    nothing = run_cli("functions", "cancel", slug, env=env)
    assert nothing.returncode == 0 and f"{slug}: 0 run(s) cancelled" in nothing.stdout
    missing = run_cli("functions", "cancel", "no-such-fn", env=env)
    assert missing.returncode != 0 and "agentcmd functions list" in missing.stderr
    bad = run_cli("functions", "cancel", slug, "--from", "yesterday", env=env)
    assert bad.returncode != 0 and "--from 'yesterday' is not a time" in bad.stderr
