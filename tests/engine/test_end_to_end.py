"""The whole path on real processes: event -> run -> SDK step calls -> completed run over REST."""

from __future__ import annotations

from typing import Any

import inngest
import pytest


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_three_step_run_completes_and_is_readable(mode: str, engine_factory: Any, sdk_factory: Any,
                                                   client_for: Any, send_event: Any, runs_for_event: Any,
                                                   wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory(mode)
    client = client_for(engine)
    log = step_log()

    @client.create_function(fn_id="three-steps", trigger=inngest.TriggerEvent(event="test/three"))
    async def three(ctx: inngest.Context) -> dict[str, Any]:
        async def step(n: int) -> int:
            log.add(f"s{n}")
            return n * 10

        a = await ctx.step.run("s1", step, 1)
        b = await ctx.step.run("s2", step, 2)
        c = await ctx.step.run("s3", step, 3)
        return {"sum": a + b + c, "n": ctx.event.data["n"]}

    sdk_factory(engine, client, [three])
    event_id = send_event(engine, "test/three", {"n": 7})
    [run_id] = runs_for_event(engine, event_id)
    run = wait_for_run_status(engine, run_id, "Completed")
    assert run["output"] == {"sum": 60, "n": 7}
    assert run["function_slug"] == "test-app-three-steps"
    assert run["event_id"] == event_id
    steps = engine.get(f"/v1/runs/{run_id}/steps").json()["data"]
    assert [(s["name"], s["output"]) for s in steps] == [("s1", 10), ("s2", 20), ("s3", 30)]
    assert sorted(log.lines()) == ["s1", "s2", "s3"]
