"""Failures that are not the user's code: an app gone for good, a cancel while a call is in flight."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import inngest


def test_an_unreachable_app_uses_no_retry_and_fails_the_run_after_the_app_wait_timeout(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any) -> None:
    engine = engine_factory("dev", args=("--app-wait-timeout", "1"))
    client = client_for(engine, app_id="gone")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="t/gone"), retries=2)
    async def f(ctx: inngest.Context) -> str:
        return "never"

    app = sdk_factory(engine, client, [f])
    app.stop()                                     # the app goes away after syncing
    [run_id] = runs_for_event(engine, send_event(engine, "t/gone"))
    run = wait_for_run_status(engine, run_id, "Failed", timeout=20)
    assert run["output"]["name"] == "EngineError" and run["output"]["code"] == "app_unreachable"
    assert "app gone unreachable at" in run["error"] and "SDK unreachable" in run["error"]
    assert run["attempt"] == 0
    history = [h["type"] for h in engine.get(f"/v1/runs/{run_id}/history").json()["data"]]
    assert history.count("attempt_failed") == 0            # not answering is no attempt
    assert history.count("attempt_interrupted") == 1


def test_cancel_while_a_call_is_in_flight_drops_its_answer(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    client = client_for(engine, app_id="inflight")
    gate = threading.Event()
    log = step_log()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="t/inflight"))
    async def f(ctx: inngest.Context) -> str:
        async def slow() -> str:
            log.add("slow")
            while not gate.is_set():
                import asyncio
                await asyncio.sleep(0.01)
            return "done"

        await ctx.step.run("slow", slow)
        await ctx.step.run("after", lambda: log.add("after"))
        return "finished"

    sdk_factory(engine, client, [f])
    [run_id] = runs_for_event(engine, send_event(engine, "t/inflight"))
    deadline = time.monotonic() + 10
    while log.count("slow") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    r = httpx.delete(f"{engine.url}/v1/runs/{run_id}", headers=engine.headers, timeout=5)
    assert r.json()["data"]["status"] == "Cancelled"
    gate.set()                                     # the in-flight step now answers
    time.sleep(0.3)   # nothing to poll for: the assertion is that nothing happens after the answer
    run = wait_for_run_status(engine, run_id, "Cancelled")
    assert run["output"] is None
    assert engine.get(f"/v1/runs/{run_id}/steps").json()["data"] == []
    assert log.count("after") == 0
