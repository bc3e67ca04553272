"""A run is Running from its first call, and a step's start is when its call began.

agentcmd's steps are often coding agents that work for many minutes inside
one SDK call: the run must not look queued meanwhile, and the step's
duration must be the time it ran, not zero.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest


def _ts(iso: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_a_long_first_step_shows_the_run_running_with_its_start(
        mode: str, engine_factory: Callable[..., Any], client_for: Callable[..., Any],
        sdk_factory: Callable[..., Any], send_event: Callable[..., str],
        runs_for_event: Callable[..., list[str]], wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    import inngest

    engine = engine_factory(mode)
    client = client_for(engine)
    gate, entered = threading.Event(), threading.Event()

    @client.create_function(fn_id="agent", trigger=inngest.TriggerEvent(event="timing/go"), retries=0)
    async def agent(ctx: inngest.Context) -> str:
        async def work() -> str:
            entered.set()
            await asyncio.to_thread(gate.wait, 20)
            return "done"

        return str(await ctx.step.run("work", work))

    sdk_factory(engine, client, [agent])
    [run_id] = runs_for_event(engine, send_event(engine, "timing/go"))
    assert entered.wait(10)
    running = wait_for_run_status(engine, run_id, "Running", timeout=5)   # while the step is still working
    assert running["run_started_at"] is not None
    time.sleep(0.3)                     # the step's own work: what its duration must show
    gate.set()
    done = wait_for_run_status(engine, run_id, "Completed")
    assert done["run_started_at"] == running["run_started_at"]
    [step] = engine.get(f"/v1/runs/{run_id}/steps").json()["data"]
    took = (_ts(step["ended_at"]) - _ts(step["started_at"])).total_seconds()
    assert took >= 0.3, step
    assert _ts(step["started_at"]) >= _ts(running["run_started_at"])
