"""Durability on real processes: kill the engine at exact points, restart it on the same file.

The promise (DESIGN): a step's result is committed before the next call
goes out, so after ``kill -9`` and a restart every in-flight run finishes
and a completed step is never run again. A step whose result was *not*
committed when the engine died runs again (at-least-once execution,
exactly-once memo). A step log file counts executions across restarts.
"""

from __future__ import annotations

import threading
from typing import Any

import inngest
import pytest

STEPS = ["s1", "s2", "s3", "s4", "s5"]

pytestmark = pytest.mark.slow


def _five_steps(client: Any, log: Any, gate: threading.Event | None = None) -> Any:
    @client.create_function(fn_id="five", trigger=inngest.TriggerEvent(event="test/five"), retries=2)
    async def five(ctx: inngest.Context) -> list[str]:
        out = []
        for name in STEPS:
            async def step(name: str = name) -> str:
                log.add(name)
                if gate is not None and name == "s3":
                    # Block mid-step until the test has killed the engine.
                    import asyncio
                    while not gate.is_set():
                        await asyncio.sleep(0.01)
                return name.upper()

            out.append(await ctx.step.run(name, step))
        return out

    return five


def _wait_exit(engine: Any, timeout: float = 15) -> int:
    assert engine.proc is not None
    return int(engine.proc.wait(timeout))


@pytest.mark.parametrize(("point", "ran_twice"), [
    ("after_step_commit:3", None),      # s3 committed, then crash: nothing re-runs
    ("after_call:3", "s3"),             # s3 ran in the SDK but was not committed: it runs again
    ("before_call:3", None),            # crash before the 3rd call went out
])
def test_crash_at_a_fixed_point_then_restart_finishes_the_run(
        point: str, ran_twice: str | None, engine_factory: Any, sdk_factory: Any, client_for: Any,
        send_event: Any, runs_for_event: Any, wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production", start=False)
    engine.start(extra_env={"AGENTCMD_ENGINE_CRASH_AT": point})
    client = client_for(engine)
    log = step_log()
    sdk_factory(engine, client, [_five_steps(client, log)])
    event_id = send_event(engine, "test/five")
    assert _wait_exit(engine) == 137, engine.output()
    engine.start()                       # same port, same --sqlite-dir, no crash point
    [run_id] = runs_for_event(engine, event_id)
    run = wait_for_run_status(engine, run_id, "Completed")
    assert run["output"] == [s.upper() for s in STEPS]
    expected = {s: (2 if s == ran_twice else 1) for s in STEPS}
    assert {s: log.count(s) for s in STEPS} == expected
    steps = engine.get(f"/v1/runs/{run_id}/steps").json()["data"]
    assert [s["name"] for s in steps] == STEPS      # one memo per step, in order


def test_sigkill_mid_step_then_restart_completes_without_rerunning_finished_steps(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    client = client_for(engine)
    log = step_log()
    gate = threading.Event()
    sdk_factory(engine, client, [_five_steps(client, log, gate)])
    event_id = send_event(engine, "test/five")
    [run_id] = runs_for_event(engine, event_id)
    import time
    deadline = time.monotonic() + 10
    while log.count("s3") == 0:
        assert time.monotonic() < deadline, f"s3 never started: {log.lines()}"
        time.sleep(0.01)
    engine.kill()                        # SIGKILL while s3 is running inside the SDK
    gate.set()
    engine.start()
    run = wait_for_run_status(engine, run_id, "Completed")
    assert run["output"] == [s.upper() for s in STEPS]
    assert {s: log.count(s) for s in STEPS} == {"s1": 1, "s2": 1, "s3": 2, "s4": 1, "s5": 1}


def test_start_keeps_history_across_a_restart_and_dev_forgets(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    for mode in ("production", "dev"):
        engine = engine_factory(mode)
        client = client_for(engine, app_id=f"keep-{mode}")
        log = step_log()
        sdk_factory(engine, client, [_five_steps(client, log)])
        event_id = send_event(engine, "test/five")
        [run_id] = runs_for_event(engine, event_id)
        wait_for_run_status(engine, run_id, "Completed")
        assert engine.stop() == 0
        engine.start()
        after = engine.get(f"/v1/runs/{run_id}")
        if mode == "production":
            assert after.status_code == 200 and after.json()["data"]["status"] == "Completed"
            assert engine.get(f"/v1/events/{event_id}").status_code == 200
        else:
            assert after.status_code == 404
            assert engine.get(f"/v1/events/{event_id}").status_code == 404


def test_sigterm_interrupts_the_in_flight_call_exits_0_and_the_run_resumes_without_a_retry(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    import signal
    import time

    engine = engine_factory("production")
    client = client_for(engine)
    log = step_log()
    gate = threading.Event()
    sdk_factory(engine, client, [_five_steps(client, log, gate)])
    [run_id] = runs_for_event(engine, send_event(engine, "test/five"))
    deadline = time.monotonic() + 10
    while log.count("s3") == 0:
        assert time.monotonic() < deadline, f"s3 never started: {log.lines()}"
        time.sleep(0.01)
    assert engine.proc is not None
    engine.proc.send_signal(signal.SIGTERM)      # s3 is in flight inside the SDK: the engine cuts the call
    assert engine.proc.wait(15) == 0, engine.output()
    gate.set()
    engine.start()
    run = wait_for_run_status(engine, run_id, "Completed")
    assert run["output"] == [s.upper() for s in STEPS]
    assert {s: log.count(s) for s in STEPS} == {**{s: 1 for s in STEPS}, "s3": 2}   # s3 ran again (at least once)
    history = engine.get(f"/v1/runs/{run_id}/history").json()["data"]
    assert [h["detail"] for h in history if h["type"] == "attempt_interrupted"] == [
        "the engine is shutting down; the call runs again when it starts"]
    assert "attempt_failed" not in [h["type"] for h in history]          # retries=2, none used
