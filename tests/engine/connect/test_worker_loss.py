"""A worker killed mid-step: its lease runs out, the call is interrupted (no attempt) and goes to another
worker; the step that had finished is not run again.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import inngest
from tests.harness.engine import client_for, runs_for_event, send_event, wait_for_run_status
from tests.polling import wait_for

HERE = Path(__file__).parent


def test_a_killed_worker_s_call_goes_to_the_other_worker_without_using_an_attempt(
        connect_engine: Any, connect_worker: Any, tmp_path: Path) -> None:
    engine = connect_engine("dev")
    steps = tmp_path / "steps.log"
    doomed = subprocess.Popen([sys.executable, str(HERE / "killed_worker.py"), engine.url, "loss-app", str(steps)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: len(engine.get("/v0/connect/envs/x/conns").json()["data"]) == 1, 20, "the worker process")
        run_id = runs_for_event(engine, send_event(engine, "conn/two"))[0]
        wait_for(lambda: steps.exists() and "b-start" in steps.read_text(), 15, "step b to start on the worker")
        client = client_for(engine, "loss-app")
        survivor_steps: list[str] = []

        @client.create_function(fn_id="two", trigger=inngest.TriggerEvent(event="conn/two"), retries=0)
        async def two(ctx: inngest.Context) -> str:
            def a() -> str:
                survivor_steps.append("a")
                return "A"

            def b() -> str:
                survivor_steps.append("b")
                return "B"

            return await ctx.step.run("a", a) + await ctx.step.run("b", b)

        connect_worker(client, [two])
        doomed.kill()
        doomed.wait(10)
        run = wait_for_run_status(engine, run_id, "Completed", timeout=30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait(10)
    assert run["output"] == "AB" and run["attempt"] == 0
    assert steps.read_text().split() == ["a", "b-start"]
    assert survivor_steps == ["b"]          # step a's result was memoised: not run again
    history = engine.get(f"/v1/runs/{run_id}/history").json()["data"]
    kinds = [h.get("type") or h.get("kind") for h in history]
    assert "attempt_interrupted" in kinds and "attempt_failed" not in kinds, history
