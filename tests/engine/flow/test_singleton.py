"""Singleton per key through the SDK, in both modes: one unfinished run per key value."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import inngest
import pytest


def _functions(client: Any) -> list[Any]:
    @client.create_function(fn_id="one-per-user", trigger=inngest.TriggerEvent(event="s/skip"),
                            singleton=inngest.Singleton(mode="skip", key="event.data.user"))
    async def one_per_user(ctx: inngest.Context) -> str:
        await ctx.step.sleep("hold", datetime.timedelta(seconds=1))
        return str(ctx.event.data["user"])

    @client.create_function(fn_id="latest-per-user", trigger=inngest.TriggerEvent(event="s/cancel"),
                            singleton=inngest.Singleton(mode="cancel", key="event.data.user"))
    async def latest_per_user(ctx: inngest.Context) -> str:
        await ctx.step.sleep("hold", datetime.timedelta(seconds=1))
        return str(ctx.event.data["n"])

    return [one_per_user, latest_per_user]


@pytest.fixture(scope="module")
def stack(module_engine: Any, serve_sdk: Any, client_for: Any) -> Iterator[Any]:
    client = client_for(module_engine, app_id=f"single-{module_engine.mode}")
    app = serve_sdk(module_engine, client, _functions(client))
    yield module_engine
    app.stop()


def test_skip_keeps_one_run_per_key_value(stack: Any, send_event: Any, runs_for_event: Any,
                                          wait_for_run_status: Any) -> None:
    engine = stack
    a1 = send_event(engine, "s/skip", {"user": "ann"})
    [run_a1] = runs_for_event(engine, a1)
    a2 = send_event(engine, "s/skip", {"user": "ann"})
    b1 = send_event(engine, "s/skip", {"user": "bob"})
    [run_b1] = runs_for_event(engine, b1)        # another key value is not held back
    wait_for_run_status(engine, run_a1, "Completed")
    wait_for_run_status(engine, run_b1, "Completed")
    assert engine.get(f"/v1/events/{a2}/runs").json()["data"] == []
    # once ann's run has finished, a new one may start
    [again] = runs_for_event(engine, send_event(engine, "s/skip", {"user": "ann"}))
    wait_for_run_status(engine, again, "Completed")


def test_cancel_replaces_the_run_of_the_same_key_only(stack: Any, send_event: Any, runs_for_event: Any,
                                                      wait_for_run_status: Any) -> None:
    engine = stack
    [first] = runs_for_event(engine, send_event(engine, "s/cancel", {"user": "ann", "n": 1}))
    [other] = runs_for_event(engine, send_event(engine, "s/cancel", {"user": "bob", "n": 2}))
    deadline = time.monotonic() + 10
    while engine.get(f"/v1/runs/{first}").json()["data"]["status"] == "Queued" and time.monotonic() < deadline:
        time.sleep(0.02)
    [second] = runs_for_event(engine, send_event(engine, "s/cancel", {"user": "ann", "n": 3}))
    wait_for_run_status(engine, first, "Cancelled")
    assert wait_for_run_status(engine, second, "Completed")["output"] == "3"
    assert wait_for_run_status(engine, other, "Completed")["output"] == "2"
