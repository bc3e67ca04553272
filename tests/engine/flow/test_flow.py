"""Flow control with the official SDK: concurrency, rate limit, throttle, singleton, timeouts, idempotency."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Iterator
from typing import Any

import inngest
import pytest

State = dict[str, Any]


def _functions(client: Any, state: State) -> list[Any]:
    @client.create_function(fn_id="one-at-a-time", trigger=inngest.TriggerEvent(event="f/serial"),
                            concurrency=[inngest.Concurrency(limit=1)])
    async def serial(ctx: inngest.Context) -> int:
        async def work() -> int:
            state["now"] = state.get("now", 0) + 1
            state["max"] = max(state.get("max", 0), state["now"])
            await asyncio.sleep(0.2)
            state["now"] -= 1
            return 1

        return await ctx.step.run("work", work)

    @client.create_function(fn_id="rate-limited", trigger=inngest.TriggerEvent(event="f/rate"),
                            rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(minutes=1),
                                                         key="event.data.user"))
    async def rate_limited(ctx: inngest.Context) -> Any:
        return ctx.event.data["user"]

    @client.create_function(fn_id="throttled", trigger=inngest.TriggerEvent(event="f/throttle"),
                            throttle=inngest.Throttle(limit=1, period=datetime.timedelta(seconds=1)))
    async def throttled(ctx: inngest.Context) -> float:
        return time.time()

    @client.create_function(fn_id="too-slow", trigger=inngest.TriggerEvent(event="f/slow"),
                            timeouts=inngest.Timeouts(finish=datetime.timedelta(seconds=1)))
    async def too_slow(ctx: inngest.Context) -> str:
        await ctx.step.sleep("long", datetime.timedelta(seconds=30))
        return "finished"

    @client.create_function(fn_id="once-per-order", trigger=inngest.TriggerEvent(event="f/order"),
                            idempotency="event.data.order")
    async def once(ctx: inngest.Context) -> Any:
        return ctx.event.data["order"]

    @client.create_function(fn_id="singleton", trigger=inngest.TriggerEvent(event="f/single"),
                            singleton=inngest.Singleton(mode="skip"))
    async def single(ctx: inngest.Context) -> str:
        await ctx.step.sleep("hold", datetime.timedelta(seconds=1))
        return "done"

    return [serial, rate_limited, throttled, too_slow, once, single]


@pytest.fixture(scope="module")
def stack(module_engine: Any, serve_sdk: Any, client_for: Any) -> Iterator[tuple[Any, State]]:
    state: State = {}
    client = client_for(module_engine, app_id=f"flow-{module_engine.mode}")
    app = serve_sdk(module_engine, client, _functions(client, state))
    yield module_engine, state
    app.stop()


def _runs(engine: Any, event_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for eid in event_ids:
        out += engine.get(f"/v1/events/{eid}/runs").json()["data"]
    return out


def test_concurrency_limit_one_runs_calls_one_at_a_time(stack: Any, send_event: Any, runs_for_event: Any,
                                                        wait_for_run_status: Any) -> None:
    engine, state = stack
    ids = [send_event(engine, "f/serial") for _ in range(3)]
    for eid in ids:
        [run_id] = runs_for_event(engine, eid)
        wait_for_run_status(engine, run_id, "Completed")
    assert state["max"] == 1


def test_rate_limit_drops_excess_events_per_key(stack: Any, send_event: Any, runs_for_event: Any,
                                                wait_for_run_status: Any) -> None:
    engine, _ = stack
    a1 = send_event(engine, "f/rate", {"user": "a"})
    a2 = send_event(engine, "f/rate", {"user": "a"})
    b1 = send_event(engine, "f/rate", {"user": "b"})
    for eid in (a1, b1):
        [run_id] = runs_for_event(engine, eid)
        wait_for_run_status(engine, run_id, "Completed")
    assert engine.get(f"/v1/events/{a2}/runs").json()["data"] == []


def test_throttle_delays_instead_of_dropping(stack: Any, send_event: Any, runs_for_event: Any,
                                             wait_for_run_status: Any) -> None:
    engine, _ = stack
    ids = [send_event(engine, "f/throttle") for _ in range(2)]
    outs = []
    for eid in ids:
        [run_id] = runs_for_event(engine, eid)
        outs.append(wait_for_run_status(engine, run_id, "Completed")["output"])
    assert abs(outs[1] - outs[0]) >= 0.9


def test_finish_timeout_cancels_a_run_that_takes_too_long(stack: Any, send_event: Any, runs_for_event: Any,
                                                          wait_for_run_status: Any) -> None:
    engine, _ = stack
    [run_id] = runs_for_event(engine, send_event(engine, "f/slow"))
    run = wait_for_run_status(engine, run_id, "Cancelled", timeout=10)
    assert "timeouts.finish" in run["error"]


def test_idempotency_key_runs_once_per_value(stack: Any, send_event: Any, runs_for_event: Any) -> None:
    engine, _ = stack
    first = send_event(engine, "f/order", {"order": 7})
    again = send_event(engine, "f/order", {"order": 7})
    other = send_event(engine, "f/order", {"order": 8})
    assert len(runs_for_event(engine, first)) == 1 and len(runs_for_event(engine, other)) == 1
    assert engine.get(f"/v1/events/{again}/runs").json()["data"] == []


def test_singleton_skip_starts_one_run(stack: Any, send_event: Any, runs_for_event: Any,
                                       wait_for_run_status: Any) -> None:
    engine, _ = stack
    ids = [send_event(engine, "f/single") for _ in range(2)]
    [run_id] = runs_for_event(engine, ids[0])
    wait_for_run_status(engine, run_id, "Completed")
    assert len(_runs(engine, ids)) == 1
