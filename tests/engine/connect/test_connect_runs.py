"""Runs driven over the connect gateway by real SDK connect workers (both modes).

The app registers over WORKER_CONNECT (no HTTP server anywhere), appears
like any app, and its runs go over the WebSocket with the executor's usual
memo: three steps, each run once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import httpx
import inngest
import pytest
from tests.harness.engine import client_for, runs_for_event, send_event, wait_for_run_status
from tests.polling import wait_for


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_three_step_run_over_connect(mode: str, connect_engine: Any, connect_worker: Any) -> None:
    engine = connect_engine(mode)
    client = client_for(engine, "conn-app")
    calls: Counter[str] = Counter()

    @client.create_function(fn_id="three", trigger=inngest.TriggerEvent(event="conn/three"), retries=0)
    async def three(ctx: inngest.Context) -> str:
        def step(name: str) -> str:
            calls[name] += 1
            return name.upper()

        a = await ctx.step.run("a", lambda: step("a"))
        b = await ctx.step.run("b", lambda: step("b"))
        c = await ctx.step.run("c", lambda: step("c"))
        return a + b + c

    connect_worker(client, [three])
    run_id = runs_for_event(engine, send_event(engine, "conn/three"))[0]
    run = wait_for_run_status(engine, run_id, "Completed")
    assert run["output"] == "ABC" and run["attempt"] == 0
    assert calls == {"a": 1, "b": 1, "c": 1}
    apps = engine.get("/v1/apps").json()["data"]
    app = next(a for a in apps if a["id"] == "conn-app")
    assert app["url"] == "connect://conn-app"
    slugs = [f["slug"] for f in engine.get("/v1/functions").json()["data"]]
    assert "conn-app-three" in slugs
    conns = engine.get("/v0/connect/envs/any/conns").json()["data"]
    assert [(c["app_ids"], c["status"]) for c in conns] == [(["conn-app"], "READY")]
    metrics = engine.get("/metrics").text
    assert 'agentcmd_connect_workers{status="ready"} 1.0' in metrics
    assert "agentcmd_connect_calls_total 4.0" in metrics      # three steps and the function's end


def test_two_workers_share_runs(connect_engine: Any, connect_worker: Any) -> None:
    """Requests go to the least busy ready worker: with two, both get some of 8 concurrent runs."""
    engine = connect_engine("dev")
    client = client_for(engine, "shared-app")
    seen: Counter[str] = Counter()
    release = threading.Event()

    @client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="conn/slow"), retries=0)
    async def slow(ctx: inngest.Context) -> str:
        def step() -> str:
            seen[threading.current_thread().name] += 1
            release.wait(10)
            return "ok"

        return await ctx.step.run("s", step)

    for _ in range(2):
        connect_worker(client_for(engine, "shared-app"), [slow])
    # Each worker's functions are its own objects: count per worker through the worker thread that ran them.
    ids = [send_event(engine, "conn/slow") for _ in range(8)]
    run_ids = [runs_for_event(engine, i)[0] for i in ids]
    wait_for(lambda: sum(c["in_flight"] for c in engine.get("/v0/connect/envs/x/conns").json()["data"]) == 8,
             15, "8 requests in flight")
    conns = engine.get("/v0/connect/envs/x/conns").json()["data"]
    assert sorted(c["in_flight"] for c in conns) == [4, 4]
    release.set()
    for run_id in run_ids:
        assert wait_for_run_status(engine, run_id, "Completed")["output"] == "ok"


def test_capacity_is_respected(connect_engine: Any, connect_worker: Any) -> None:
    """max_worker_concurrency=1: three runs go one at a time, and all complete."""
    engine = connect_engine("dev")
    client = client_for(engine, "cap-app")
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    @client.create_function(fn_id="one", trigger=inngest.TriggerEvent(event="conn/cap"), retries=0)
    async def one(ctx: inngest.Context) -> str:
        def step() -> str:
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.3)
            with lock:
                state["now"] -= 1
            return "done"

        return await ctx.step.run("s", step)

    connect_worker(client, [one], max_worker_concurrency=1)
    run_ids = [runs_for_event(engine, send_event(engine, "conn/cap"))[0] for _ in range(3)]
    for run_id in run_ids:
        wait_for_run_status(engine, run_id, "Completed")
    assert state["max"] == 1
    conns = engine.get("/v0/connect/envs/x/conns").json()["data"]
    assert conns[0]["capacity"] == 1


def test_a_step_longer_than_call_timeout_completes_while_its_lease_is_extended(
        connect_engine: Any, connect_worker: Any) -> None:
    engine = connect_engine("dev", "--call-timeout", "1")
    client = client_for(engine, "long-app")

    @client.create_function(fn_id="long", trigger=inngest.TriggerEvent(event="conn/long"), retries=0)
    async def long(ctx: inngest.Context) -> str:
        def step() -> str:
            time.sleep(7)      # past the call timeout (1 s) and past one lease (no extension: 12 s lease)
            return "slept"

        return await ctx.step.run("s", step)

    connect_worker(client, [long])
    run_id = runs_for_event(engine, send_event(engine, "conn/long"))[0]
    run = wait_for_run_status(engine, run_id, "Completed", timeout=30)
    assert run["output"] == "slept" and run["attempt"] == 0


def test_a_run_waits_for_a_worker_and_goes_to_the_first_that_connects(connect_engine: Any,
                                                                      connect_worker: Any) -> None:
    """No worker: the call is interrupted (no attempt), the run waits; a worker connecting runs it."""
    engine = connect_engine("dev")
    client = client_for(engine, "late-app")

    @client.create_function(fn_id="late", trigger=inngest.TriggerEvent(event="conn/late"), retries=0)
    async def late(ctx: inngest.Context) -> str:
        return await ctx.step.run("s", lambda: "late")

    first = connect_worker(client, [late])
    first.close()
    wait_for(lambda: engine.get("/v0/connect/envs/x/conns").json()["data"] == [], 10, "the worker to be gone")
    run_id = runs_for_event(engine, send_event(engine, "conn/late"))[0]
    run = wait_for(lambda: (r := engine.get(f"/v1/runs/{run_id}").json()["data"])["waiting_for_app"] and r, 10,
                   "the run to wait for a worker")
    assert "no connect worker of app late-app" in run["waiting_for_app"]["reason"]
    connect_worker(client_for(engine, "late-app"), [late])
    done = wait_for_run_status(engine, run_id, "Completed", timeout=10)
    assert done["output"] == "late" and done["attempt"] == 0


def test_start_answers_503_when_connect_is_off(engine_factory: Any) -> None:
    engine = engine_factory("dev", args=("--no-connect",))
    r = httpx.post(engine.url + "/v0/connect/start", content=b"")
    assert r.status_code == 503 and "--no-connect" in r.json()["error"]


def test_a_draining_worker_finishes_its_step_and_gets_no_new_one(connect_engine: Any, connect_worker: Any) -> None:
    """WORKER_PAUSE (the SDK's graceful close): in flight finishes there, new work waits for another worker."""
    engine = connect_engine("dev")
    client = client_for(engine, "drain-app")
    release = threading.Event()
    ran_on: list[str] = []

    @client.create_function(fn_id="d", trigger=inngest.TriggerEvent(event="conn/drain"), retries=0)
    async def d(ctx: inngest.Context) -> str:
        async def step() -> str:
            ran_on.append("first")
            await asyncio.to_thread(release.wait, 20)    # the worker's loop stays free to close
            return "first"

        return await ctx.step.run("s", step)

    first = connect_worker(client, [d])
    busy = runs_for_event(engine, send_event(engine, "conn/drain"))[0]
    wait_for(lambda: ran_on == ["first"], 10, "the step to start on the first worker")
    first.close(wait=False)
    wait_for(lambda: [c["status"] for c in engine.get("/v0/connect/envs/x/conns").json()["data"]] == ["DRAINING"],
             10, "the worker to drain")
    waiting = runs_for_event(engine, send_event(engine, "conn/drain"))[0]
    run = wait_for(lambda: (r := engine.get(f"/v1/runs/{waiting}").json()["data"])["waiting_for_app"] and r, 10,
                   "the new run to wait for a worker")
    assert "draining" in run["waiting_for_app"]["reason"]
    release.set()
    first.thread.join(15)         # the draining worker closes once its step is answered
    assert not first.thread.is_alive()
    other = client_for(engine, "drain-app")

    @other.create_function(fn_id="d", trigger=inngest.TriggerEvent(event="conn/drain"), retries=0)
    async def d2(ctx: inngest.Context) -> str:
        return await ctx.step.run("s", lambda: "second")

    connect_worker(other, [d2])
    assert wait_for_run_status(engine, waiting, "Completed")["output"] == "second"
    # The busy run's step finished on the draining worker (memoised); its last call ran on the other one.
    assert wait_for_run_status(engine, busy, "Completed")["output"] == "first"
    assert ran_on == ["first"]
