"""Concurrency limits through the official SDK, in both modes: queued calls wait, never fail.

The SDK app runs in this process, so the step bodies record how many of them
run at once; each test fails if the limit it checks were ignored.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import inngest
import pytest


class Meter:
    """How many step bodies of each group run at once (the SDK serves calls concurrently)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.order: list[str] = []
        self.started: dict[str, float] = {}

    def work(self, groups: list[str], hold: float = 0.25, label: str = "") -> Callable[[], Any]:
        async def body() -> str:
            with self.lock:
                for g in groups:
                    self.now[g] = self.now.get(g, 0) + 1
                    self.peak[g] = max(self.peak.get(g, 0), self.now[g])
                if label:
                    self.order.append(label)
                    self.started.setdefault(label, time.time())
            await asyncio.sleep(hold)
            with self.lock:
                for g in groups:
                    self.now[g] -= 1
            return label or "ok"

        return body


def _functions(client: Any, m: Meter) -> list[Any]:
    ev = inngest.TriggerEvent

    @client.create_function(fn_id="limit-two", trigger=ev(event="cc/two"),
                            concurrency=[inngest.Concurrency(limit=2)])
    async def limit_two(ctx: inngest.Context) -> Any:
        await ctx.step.run("a", m.work(["two"]))
        return await ctx.step.run("b", m.work(["two"]))

    @client.create_function(fn_id="per-user", trigger=ev(event="cc/user"),
                            concurrency=[inngest.Concurrency(limit=1, key="event.data.user")])
    async def per_user(ctx: inngest.Context) -> Any:
        user = ctx.event.data["user"]
        return await ctx.step.run("a", m.work([f"user:{user}", "users"]))

    shared = [inngest.Concurrency(limit=1, key='"shared-api"', scope="env")]

    @client.create_function(fn_id="env-a", trigger=ev(event="cc/env"), concurrency=shared)
    async def env_a(ctx: inngest.Context) -> Any:
        return await ctx.step.run("a", m.work(["env"]))

    @client.create_function(fn_id="env-b", trigger=ev(event="cc/env"), concurrency=shared)
    async def env_b(ctx: inngest.Context) -> Any:
        return await ctx.step.run("a", m.work(["env"]))

    @client.create_function(fn_id="two-limits", trigger=ev(event="cc/both"),
                            concurrency=[inngest.Concurrency(limit=3),
                                         inngest.Concurrency(limit=1, key="event.data.team")])
    async def two_limits(ctx: inngest.Context) -> Any:
        team = ctx.event.data["team"]
        return await ctx.step.run("a", m.work(["both", f"team:{team}"]))

    @client.create_function(fn_id="sleeper", trigger=ev(event="cc/sleep"),
                            concurrency=[inngest.Concurrency(limit=1)])
    async def sleeper(ctx: inngest.Context) -> Any:
        n = ctx.event.data["n"]
        await ctx.step.run("before", m.work(["sleeper"], 0.05, f"before-{n}"))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=2))
        return await ctx.step.run("after", m.work(["sleeper"], 0.05, f"after-{n}"))

    @client.create_function(fn_id="prioritised", trigger=ev(event="cc/prio"),
                            concurrency=[inngest.Concurrency(limit=1)],
                            priority=inngest.Priority(run="event.data.vip ? 120 : 0"))
    async def prioritised(ctx: inngest.Context) -> Any:
        label = ctx.event.data["label"]
        return await ctx.step.run("a", m.work(["prio"], 3.0 if label == "blocker" else 0.05, label))

    @client.create_function(fn_id="held-back", trigger=ev(event="cc/later"),
                            priority=inngest.Priority(run="0 - 2"))
    async def held_back(ctx: inngest.Context) -> Any:
        return await ctx.step.run("a", m.work(["later"], 0.01, f"later-{ctx.event.data['n']}"))

    return [limit_two, per_user, env_a, env_b, two_limits, sleeper, prioritised, held_back]


@pytest.fixture(scope="module")
def stack(module_engine: Any, serve_sdk: Any, client_for: Any) -> Iterator[tuple[Any, Meter]]:
    meter = Meter()
    client = client_for(module_engine, app_id=f"cc-{module_engine.mode}")
    app = serve_sdk(module_engine, client, _functions(client, meter))
    yield module_engine, meter
    app.stop()


def _finish_all(engine: Any, event_ids: list[str], runs_for_event: Any, wait_for_run_status: Any,
                per_event: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
    runs = []
    for eid in event_ids:
        for run_id in runs_for_event(engine, eid, per_event):
            runs.append(wait_for_run_status(engine, run_id, "Completed", timeout=timeout))
    return runs


def test_a_function_limit_caps_calls_in_flight_and_every_queued_run_finishes(
        stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any) -> None:
    engine, m = stack
    ids = [send_event(engine, "cc/two") for _ in range(8)]
    _finish_all(engine, ids, runs_for_event, wait_for_run_status)
    assert m.peak["two"] == 2


def test_a_key_limits_each_value_separately(stack: Any, send_event: Any, runs_for_event: Any,
                                            wait_for_run_status: Any) -> None:
    engine, m = stack
    ids = [send_event(engine, "cc/user", {"user": u}) for u in ("ann", "bob", "ann", "bob", "ann", "bob")]
    _finish_all(engine, ids, runs_for_event, wait_for_run_status)
    assert m.peak["user:ann"] == 1 and m.peak["user:bob"] == 1
    assert m.peak["users"] == 2, "different key values run side by side"


def test_env_scope_shares_one_limit_across_functions(stack: Any, send_event: Any, runs_for_event: Any,
                                                     wait_for_run_status: Any) -> None:
    engine, m = stack
    ids = [send_event(engine, "cc/env") for _ in range(3)]        # each event starts env-a and env-b
    _finish_all(engine, ids, runs_for_event, wait_for_run_status, per_event=2)
    assert m.peak["env"] == 1


def test_several_limits_at_once_all_hold(stack: Any, send_event: Any, runs_for_event: Any,
                                         wait_for_run_status: Any) -> None:
    engine, m = stack
    teams = ["red", "red", "red", "blue", "blue", "green", "green", "gold", "gold"]
    ids = [send_event(engine, "cc/both", {"team": t}) for t in teams]
    _finish_all(engine, ids, runs_for_event, wait_for_run_status)
    assert all(m.peak[f"team:{t}"] == 1 for t in set(teams))
    assert m.peak["both"] == 3


def test_a_sleeping_run_holds_no_slot(stack: Any, send_event: Any, runs_for_event: Any,
                                      wait_for_run_status: Any) -> None:
    engine, m = stack
    ids = [send_event(engine, "cc/sleep", {"n": n}) for n in (1, 2)]
    _finish_all(engine, ids, runs_for_event, wait_for_run_status)
    assert m.peak["sleeper"] == 1
    # run 2 did its first step while run 1 slept (limit 1 counts calls in flight, not runs)
    assert m.order.index("before-2") < m.order.index("after-1")


def test_priority_moves_a_run_ahead_in_the_waiting_line(stack: Any, send_event: Any, runs_for_event: Any,
                                                       wait_for_run_status: Any) -> None:
    engine, m = stack
    blocker = send_event(engine, "cc/prio", {"label": "blocker", "vip": False})
    [blocker_run] = runs_for_event(engine, blocker)
    deadline = time.monotonic() + 10
    while "blocker" not in m.order and time.monotonic() < deadline:   # the blocker holds the only slot
        time.sleep(0.01)
    ids = [send_event(engine, "cc/prio", {"label": f"plain-{i}", "vip": False}) for i in range(3)]
    ids.append(send_event(engine, "cc/prio", {"label": "vip", "vip": True}))
    _finish_all(engine, [blocker, *ids], runs_for_event, wait_for_run_status)
    assert blocker_run
    ran = [x for x in m.order if x == "vip" or x.startswith("plain-")]
    assert ran[0] == "vip", ran


def test_a_negative_priority_delays_the_start(stack: Any, send_event: Any, runs_for_event: Any,
                                              wait_for_run_status: Any) -> None:
    engine, m = stack
    sent = time.time()
    [run_id] = runs_for_event(engine, send_event(engine, "cc/later", {"n": 1}))
    wait_for_run_status(engine, run_id, "Completed", timeout=15)
    assert m.started["later-1"] - sent >= 1.9
