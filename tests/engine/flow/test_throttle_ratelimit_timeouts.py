"""Throttle keys, rate-limit skips and timeouts.finish measured from the start, through the SDK in both modes."""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import inngest
import pytest

State = dict[str, Any]


def _functions(client: Any, state: State) -> list[Any]:
    ev = inngest.TriggerEvent

    @client.create_function(fn_id="throttled-per-tenant", trigger=ev(event="t/go"),
                            throttle=inngest.Throttle(limit=1, period=datetime.timedelta(seconds=2),
                                                      key="event.data.tenant"))
    async def throttled(ctx: inngest.Context) -> float:
        state.setdefault("throttled", []).append((ctx.event.data["tenant"], time.time()))
        return time.time()

    @client.create_function(fn_id="rate-limited-skips", trigger=ev(event="t/rate"),
                            rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(minutes=1)))
    async def rate_limited(ctx: inngest.Context) -> str:
        return "ran"

    @client.create_function(fn_id="waits-then-runs", trigger=ev(event="t/finish"),
                            concurrency=[inngest.Concurrency(limit=1)],
                            timeouts=inngest.Timeouts(finish=datetime.timedelta(seconds=2)))
    async def waits_then_runs(ctx: inngest.Context) -> str:
        async def work() -> str:
            await asyncio.sleep(1.2)
            return "done"

        return await ctx.step.run("work", work)

    return [throttled, rate_limited, waits_then_runs]


@pytest.fixture(scope="module")
def stack(module_engine: Any, serve_sdk: Any, client_for: Any) -> Iterator[tuple[Any, State]]:
    state: State = {}
    client = client_for(module_engine, app_id=f"trt-{module_engine.mode}")
    app = serve_sdk(module_engine, client, _functions(client, state))
    yield module_engine, state
    app.stop()


def test_throttle_delays_runs_of_the_same_key_only(stack: Any, send_event: Any, runs_for_event: Any,
                                                   wait_for_run_status: Any) -> None:
    engine, state = stack
    ids = [send_event(engine, "t/go", {"tenant": t}) for t in ("acme", "acme", "globex")]
    for eid in ids:
        [run_id] = runs_for_event(engine, eid)
        wait_for_run_status(engine, run_id, "Completed", timeout=20)
    started = {}
    for tenant, at in state["throttled"]:
        started.setdefault(tenant, []).append(at)
    assert started["acme"][1] - started["acme"][0] >= 1.9, "the same key waits a period"
    assert abs(started["globex"][0] - started["acme"][0]) < 1.5, "another key is not held back"


def test_a_rate_limited_event_starts_no_run_and_is_recorded(stack: Any, send_event: Any, runs_for_event: Any,
                                                            wait_for_run_status: Any) -> None:
    engine, _ = stack
    first = send_event(engine, "t/rate")
    [run_id] = runs_for_event(engine, first)
    wait_for_run_status(engine, run_id, "Completed")
    dropped = send_event(engine, "t/rate")
    if engine.mode != "production":
        return      # the skip table is only readable from outside in start mode (a file)
    db = engine.sqlite_dir / "engine.db"
    deadline = time.monotonic() + 10
    rows: list[Any] = []
    while time.monotonic() < deadline and not rows:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT function_slug, reason FROM flow_skips WHERE event_id=?",
                                (dropped,)).fetchall()
        time.sleep(0.05)
    assert rows == [(f"trt-{engine.mode}-rate-limited-skips", "rate_limit")]
    assert engine.get(f"/v1/events/{dropped}/runs").json()["data"] == []


def test_finish_timeout_counts_from_the_start_not_from_the_wait(stack: Any, send_event: Any, runs_for_event: Any,
                                                                wait_for_run_status: Any) -> None:
    engine, _ = stack
    ids = [send_event(engine, "t/finish") for _ in range(2)]
    runs = [runs_for_event(engine, eid)[0] for eid in ids]
    # the second run waits ~1.2 s for the slot, then runs 1.2 s: 2.4 s after it was
    # scheduled but only ~1.2 s after it started, inside timeouts.finish = 2 s
    for run_id in runs:
        wait_for_run_status(engine, run_id, "Completed", timeout=15)
