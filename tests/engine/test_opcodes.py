"""Every opcode and run path with the official SDK, against a real engine in both modes.

One engine per mode (``module_engine``) and one SDK app serve all tests here;
each test uses its own event name. Retries use ``--retry-interval 0.2`` (the
fixture's flag) so retry paths finish in well under a second.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import inngest
import pytest

State = dict[str, Any]


def _functions(client: Any, state: State) -> list[Any]:
    def count(name: str) -> int:
        state[name] = state.get(name, 0) + 1
        return int(state[name])

    @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="t/flaky"), retries=3)
    async def flaky(ctx: inngest.Context) -> str:
        async def step() -> str:
            if count("flaky") < 3:
                raise ValueError("not yet")
            return "ok"

        return await ctx.step.run("flaky-step", step)

    async def on_failure(ctx: inngest.Context) -> None:
        state["failure_event"] = ctx.event.data
        state["failure_attempt"] = ctx.attempt

    @client.create_function(fn_id="doomed", trigger=inngest.TriggerEvent(event="t/doomed"), retries=1,
                            on_failure=on_failure)
    async def doomed(ctx: inngest.Context) -> None:
        count("doomed")
        raise RuntimeError("always fails")

    @client.create_function(fn_id="non-retriable", trigger=inngest.TriggerEvent(event="t/nonretriable"), retries=4)
    async def non_retriable(ctx: inngest.Context) -> None:
        async def step() -> None:
            count("nonretriable")
            raise inngest.NonRetriableError("give up")

        await ctx.step.run("give-up", step)

    @client.create_function(fn_id="step-fails", trigger=inngest.TriggerEvent(event="t/stepfails"), retries=1)
    async def step_fails(ctx: inngest.Context) -> str:
        async def step() -> None:
            count("stepfails")
            raise KeyError("boom")

        try:
            await ctx.step.run("bad", step)
        except inngest.StepError as err:
            return f"caught {err.name}"
        return "not reached"

    @client.create_function(fn_id="retry-after", trigger=inngest.TriggerEvent(event="t/retryafter"), retries=2)
    async def retry_after(ctx: inngest.Context) -> float:
        state.setdefault("retry_after_times", []).append(time.monotonic())
        if len(state["retry_after_times"]) == 1:
            raise inngest.RetryAfterError("later", 1000)
        return state["retry_after_times"][1] - state["retry_after_times"][0]

    @client.create_function(fn_id="past-sleeper", trigger=inngest.TriggerEvent(event="t/sleep-past"), retries=0)
    async def past_sleeper(ctx: inngest.Context) -> str:
        count("past-sleeper calls")
        # Over before the engine reads it: sleep_until a time gone by, and a sleep shorter than the HTTP answer.
        await ctx.step.sleep_until("gone", datetime.datetime.now() - datetime.timedelta(seconds=5))
        await ctx.step.sleep("blink", datetime.timedelta(milliseconds=1))
        return "awake"

    @client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="t/sleep"))
    async def sleeper(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        return "rested"

    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="t/wait"))
    async def waiter(ctx: inngest.Context) -> Any:
        got = await ctx.step.wait_for_event("wait", event="t/wait.reply", if_exp="event.data.k == async.data.k",
                                            timeout=datetime.timedelta(seconds=float(ctx.event.data["timeout"])))
        return None if got is None else got.data

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="t/child"), retries=0)
    async def child(ctx: inngest.Context) -> dict[str, Any]:
        if ctx.event.data.get("fail"):
            raise ValueError("child failed")
        return {"doubled": ctx.event.data["n"] * 2}

    @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="t/parent"), retries=0)
    async def parent(ctx: inngest.Context) -> Any:
        try:
            return await ctx.step.invoke("call-child", function=child, data=dict(ctx.event.data))
        except inngest.StepError as err:
            return {"error": err.message}

    @client.create_function(fn_id="cancellable", trigger=inngest.TriggerEvent(event="t/cancellable"),
                            cancel=[inngest.Cancel(event="t/cancel", if_exp="event.data.id == async.data.id")])
    async def cancellable(ctx: inngest.Context) -> str:
        await ctx.step.sleep("long", datetime.timedelta(seconds=30))
        return "not cancelled"

    @client.create_function(fn_id="sender", trigger=inngest.TriggerEvent(event="t/send"))
    async def sender(ctx: inngest.Context) -> list[str]:
        return await ctx.step.send_event("send", inngest.Event(name="t/sent", data={"from": "sender"}))

    @client.create_function(fn_id="receiver", trigger=inngest.TriggerEvent(event="t/sent"))
    async def receiver(ctx: inngest.Context) -> Any:
        return ctx.event.data

    @client.create_function(fn_id="fan-out", trigger=inngest.TriggerEvent(event="t/parallel"))
    async def fan_out(ctx: inngest.Context) -> Any:
        async def val(n: int) -> int:
            count(f"par-{n}")
            return n

        results = await ctx.group.parallel(tuple(
            (lambda n=n: ctx.step.run(f"p{n}", val, n)) for n in range(3)))
        after = await ctx.step.run("after", val, 10)
        return [*results, after]

    @client.create_function(fn_id="picky", trigger=inngest.TriggerEvent(event="t/picky",
                                                                       expression="event.data.plan == 'pro'"))
    async def picky(ctx: inngest.Context) -> str:
        return "pro only"

    @client.create_function(fn_id="debounced", trigger=inngest.TriggerEvent(event="t/debounce"),
                            debounce=inngest.Debounce(period=datetime.timedelta(seconds=1)))
    async def debounced(ctx: inngest.Context) -> Any:
        return ctx.event.data

    @client.create_function(fn_id="flood", trigger=inngest.TriggerEvent(event="t/flood"))
    async def flood(ctx: inngest.Context) -> int:
        return int(await ctx.step.run("one", lambda: ctx.event.data["i"]))

    @client.create_function(fn_id="big-state", trigger=inngest.TriggerEvent(event="t/big"))
    async def big_state(ctx: inngest.Context) -> list[int]:
        sizes = []
        for i in range(5):
            async def mib(i: int = i) -> str:
                count(f"big-{i}")
                return str(i) * (1024 * 1024)

            sizes.append(len(await ctx.step.run(f"mib-{i}", mib)))
        return sizes

    return [flood, big_state, flaky, doomed, non_retriable, step_fails, retry_after, sleeper, past_sleeper, waiter,
            child, parent, cancellable, sender, receiver, fan_out, picky, debounced]


@pytest.fixture(scope="module")
def stack(module_engine: Any, serve_sdk: Any, client_for: Any) -> Iterator[tuple[Any, State]]:
    state: State = {}
    client = client_for(module_engine, app_id=f"ops-{module_engine.mode}")
    app = serve_sdk(module_engine, client, _functions(client, state))
    yield module_engine, state
    app.stop()


def _one_run(engine: Any, send_event: Any, runs_for_event: Any, name: str, data: dict[str, Any] | None = None) -> str:
    event_id = send_event(engine, name, data or {})
    return str(runs_for_event(engine, event_id)[0])


def test_a_failing_step_is_retried_until_it_succeeds(stack: Any, send_event: Any, runs_for_event: Any,
                                                     wait_for_run_status: Any) -> None:
    engine, state = stack
    run_id = _one_run(engine, send_event, runs_for_event, "t/flaky")
    assert wait_for_run_status(engine, run_id, "Completed")["output"] == "ok"
    assert state["flaky"] == 3
    history = [h["type"] for h in engine.get(f"/v1/runs/{run_id}/history").json()["data"]]
    assert history.count("step_errored") == 2


def test_exhausted_retries_fail_the_run_and_start_the_failure_handler(
        stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any) -> None:
    engine, state = stack
    state.pop("failure_event", None)
    run_id = _one_run(engine, send_event, runs_for_event, "t/doomed", {"x": 1})
    run = wait_for_run_status(engine, run_id, "Failed")
    assert run["output"]["message"] == "always fails" and run["output"]["name"] == "RuntimeError"
    assert state["doomed"] == 2                      # retries=1: two attempts
    deadline = time.monotonic() + 10
    while "failure_event" not in state and time.monotonic() < deadline:
        time.sleep(0.02)
    data = state["failure_event"]
    assert data["function_id"] == f"ops-{engine.mode}-doomed" and data["run_id"] == run_id
    assert set(data["error"]) == {"error", "message", "name", "stack"}
    assert data["error"]["message"] == "always fails" and data["event"]["data"] == {"x": 1}
    assert state["failure_attempt"] == 0


def test_non_retriable_error_fails_at_once(stack: Any, send_event: Any, runs_for_event: Any,
                                           wait_for_run_status: Any) -> None:
    engine, state = stack
    run_id = _one_run(engine, send_event, runs_for_event, "t/nonretriable")
    run = wait_for_run_status(engine, run_id, "Failed")
    assert run["output"]["code"] == "non_retriable_error"
    assert state["nonretriable"] == 1


def test_a_step_that_fails_for_good_raises_step_error_in_user_code(
        stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any) -> None:
    engine, state = stack
    run_id = _one_run(engine, send_event, runs_for_event, "t/stepfails")
    assert wait_for_run_status(engine, run_id, "Completed")["output"] == "caught KeyError"
    assert state["stepfails"] == 2
    [step] = engine.get(f"/v1/runs/{run_id}/steps").json()["data"]
    assert step["status"] == "failed" and step["error"]["name"] == "KeyError"


def test_retry_after_is_honoured(stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any) -> None:
    engine, state = stack
    state.pop("retry_after_times", None)
    run_id = _one_run(engine, send_event, runs_for_event, "t/retryafter")
    gap = wait_for_run_status(engine, run_id, "Completed")["output"]
    assert 0.9 <= gap < 2.5


def test_sleep_is_a_queue_row_that_wakes_the_run(stack: Any, send_event: Any, runs_for_event: Any,
                                                 wait_for_run_status: Any) -> None:
    engine, _ = stack
    started = time.monotonic()
    run_id = _one_run(engine, send_event, runs_for_event, "t/sleep")
    assert wait_for_run_status(engine, run_id, "Completed")["output"] == "rested"
    assert time.monotonic() - started >= 1.0
    [nap] = engine.get(f"/v1/runs/{run_id}/steps").json()["data"]
    assert nap["name"] == "nap" and nap["op"] == "Sleep"


def test_a_sleep_already_over_when_the_engine_reads_it_is_memoised_not_called_again_and_again(
        stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any) -> None:
    engine, state = stack
    run_id = _one_run(engine, send_event, runs_for_event, "t/sleep-past")
    assert wait_for_run_status(engine, run_id, "Completed", timeout=15)["output"] == "awake"
    steps = engine.get(f"/v1/runs/{run_id}/steps").json()["data"]
    assert [(s["name"], s["op"]) for s in steps] == [("gone", "Sleep"), ("blink", "Sleep")]
    assert state["past-sleeper calls"] <= 4, "one call per sleep and one to finish (plus a discovery at most)"


def test_wait_for_event_is_fulfilled_by_a_matching_event_only(
        stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any) -> None:
    engine, _ = stack
    run_id = _one_run(engine, send_event, runs_for_event, "t/wait", {"k": "A", "timeout": 20})
    deadline = time.monotonic() + 5
    # The pause is stored in the same commit that marks the run Running.
    while engine.get(f"/v1/runs/{run_id}").json()["data"]["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    send_event(engine, "t/wait.reply", {"k": "B", "n": 1})      # `if` does not hold
    send_event(engine, "t/wait.reply", {"k": "A", "n": 2})
    assert wait_for_run_status(engine, run_id, "Completed")["output"] == {"k": "A", "n": 2}


def test_wait_for_event_times_out_with_none(stack: Any, send_event: Any, runs_for_event: Any,
                                            wait_for_run_status: Any) -> None:
    engine, _ = stack
    run_id = _one_run(engine, send_event, runs_for_event, "t/wait", {"k": "Z", "timeout": 1})
    assert wait_for_run_status(engine, run_id, "Completed")["output"] is None


@pytest.mark.parametrize(("data", "expected"), [
    ({"n": 21}, {"doubled": 42}),
    ({"n": 1, "fail": True}, {"error": "child failed"}),
])
def test_invoke_returns_the_child_result_or_its_error(stack: Any, send_event: Any, runs_for_event: Any,
                                                      wait_for_run_status: Any, data: Any, expected: Any) -> None:
    engine, _ = stack
    run_id = _one_run(engine, send_event, runs_for_event, "t/parent", data)
    assert wait_for_run_status(engine, run_id, "Completed")["output"] == expected


def test_cancel_on_event_and_by_api(stack: Any, send_event: Any, runs_for_event: Any,
                                    wait_for_run_status: Any) -> None:
    engine, _ = stack
    by_event = _one_run(engine, send_event, runs_for_event, "t/cancellable", {"id": 1})
    by_api = _one_run(engine, send_event, runs_for_event, "t/cancellable", {"id": 2})
    for run_id in (by_event, by_api):
        wait_for_run_status(engine, run_id, "Running")
    send_event(engine, "t/cancel", {"id": 1})
    wait_for_run_status(engine, by_event, "Cancelled")
    assert engine.get(f"/v1/runs/{by_api}").json()["data"]["status"] == "Running"
    r = httpx.delete(f"{engine.url}/v1/runs/{by_api}", headers=engine.headers, timeout=5)
    assert r.status_code == 200 and r.json()["data"]["status"] == "Cancelled"
    wait_for_run_status(engine, by_api, "Cancelled")


def test_send_event_step_triggers_other_functions(stack: Any, send_event: Any, runs_for_event: Any,
                                                  wait_for_run_status: Any) -> None:
    engine, _ = stack
    run_id = _one_run(engine, send_event, runs_for_event, "t/send")
    [sent_id] = wait_for_run_status(engine, run_id, "Completed")["output"]
    [received] = runs_for_event(engine, sent_id)
    assert wait_for_run_status(engine, received, "Completed")["output"] == {"from": "sender"}


def test_parallel_steps_each_run_once(stack: Any, send_event: Any, runs_for_event: Any,
                                      wait_for_run_status: Any) -> None:
    engine, state = stack
    for k in list(state):
        if k.startswith("par-"):
            del state[k]
    run_id = _one_run(engine, send_event, runs_for_event, "t/parallel")
    assert wait_for_run_status(engine, run_id, "Completed")["output"] == [0, 1, 2, 10]
    assert {k: v for k, v in state.items() if k.startswith("par-")} == {"par-0": 1, "par-1": 1, "par-2": 1,
                                                                         "par-10": 1}


def test_trigger_expression_filters_events(stack: Any, send_event: Any, runs_for_event: Any) -> None:
    engine, _ = stack
    no = send_event(engine, "t/picky", {"plan": "free"})
    yes = send_event(engine, "t/picky", {"plan": "pro"})
    assert len(runs_for_event(engine, yes)) == 1
    assert engine.get(f"/v1/events/{no}/runs").json()["data"] == []


def test_debounce_starts_one_run_with_the_last_event(stack: Any, send_event: Any, wait_for_run_status: Any) -> None:
    engine, _ = stack
    send_event(engine, "t/debounce", {"n": 1})
    last = send_event(engine, "t/debounce", {"n": 2})
    deadline = time.monotonic() + 10
    runs: list[Any] = []
    while time.monotonic() < deadline and not runs:
        runs = engine.get(f"/v1/events/{last}/runs").json()["data"]
        time.sleep(0.05)
    assert len(runs) == 1
    assert wait_for_run_status(engine, runs[0]["run_id"], "Completed")["output"] == {"n": 2}


def test_graphql_reads_what_the_sdk_test_suite_reads(stack: Any, send_event: Any, runs_for_event: Any,
                                                     wait_for_run_status: Any) -> None:
    engine, _ = stack
    event_id = send_event(engine, "t/parallel")
    [run_id] = runs_for_event(engine, event_id)
    wait_for_run_status(engine, run_id, "Completed")
    query = """query Q($run_id: String!, $event_id: ID!) {
        run(runID: $run_id) { status output trace { childrenSpans { name outputID } } }
        runTrigger(runID: $run_id) { payloads }
        event(query: {eventId: $event_id}) { functionRuns { id } } }"""
    r = httpx.post(f"{engine.url}/v0/gql", json={"query": query, "variables": {"run_id": run_id,
                                                                            "event_id": event_id}},
                   headers=engine.headers, timeout=5)
    data = r.json()["data"]
    assert data["run"]["status"] == "COMPLETED" and json.loads(data["run"]["output"]) == [0, 1, 2, 10]
    spans = data["run"]["trace"]["childrenSpans"]
    assert sorted(s["name"] for s in spans) == ["after", "p0", "p1", "p2"]
    assert json.loads(data["runTrigger"]["payloads"][0])["name"] == "t/parallel"
    assert data["event"]["functionRuns"] == [{"id": run_id}]
    out = httpx.post(f"{engine.url}/v0/gql", headers=engine.headers, timeout=5, json={
        "query": "query O($id: String!) { runTraceSpanOutputByID(outputID: $id) { data error { message } } }",
        "variables": {"id": spans[-1]["outputID"]}}).json()["data"]["runTraceSpanOutputByID"]
    assert out == {"data": "10", "error": None}


def test_a_flood_of_events_in_one_request_runs_every_one(stack: Any) -> None:
    engine, _ = stack
    r = httpx.post(f"{engine.url}/e/{engine.key}", json=[{"name": "t/flood", "data": {"i": i}} for i in range(150)],
                   timeout=10)
    assert len(r.json()["ids"]) == 150
    slug = f"ops-{engine.mode}-flood"
    deadline = time.monotonic() + 30
    runs: list[Any] = []
    while time.monotonic() < deadline:
        runs = engine.get(f"/v1/runs?function_id={slug}&status=Completed&limit=500").json()["data"]
        if len(runs) >= 150:
            break
        time.sleep(0.1)
    assert sorted(run["output"] for run in runs) == list(range(150))


def test_state_past_4_mib_is_fetched_by_the_sdk_over_the_api(stack: Any, send_event: Any, runs_for_event: Any,
                                                             wait_for_run_status: Any) -> None:
    engine, state = stack
    run_id = _one_run(engine, send_event, runs_for_event, "t/big")
    assert wait_for_run_status(engine, run_id, "Completed", timeout=30)["output"] == [1024 * 1024] * 5
    assert [state[f"big-{i}"] for i in range(5)] == [1] * 5
