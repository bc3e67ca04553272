"""Resuming a failed or cancelled run: a new run that keeps what completed and calls only the rest.

Real engine (both modes), real SDK app; every step counts its calls in a
file, so "not called again" is what the SDK really did.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import httpx
import inngest
import pytest
from tests.harness.engine import sdk_stack
from tests.polling import wait_for

State = dict[str, Any]


def _functions(client: Any, state: State) -> list[Any]:
    def count(name: str) -> None:
        state["log"].add(name)

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="rs/child"), retries=0)
    async def child(ctx: inngest.Context) -> int:
        count("child")
        return int(ctx.event.data["n"]) * 2

    @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="rs/go"), retries=0)
    async def flaky(ctx: inngest.Context) -> Any:
        async def step(name: str) -> str:
            count(name)
            if name == "three" and not state.get("fixed"):
                raise inngest.NonRetriableError("step three is broken")
            return f"{name}:{ctx.event.data.get('tag', '')}"

        one = await ctx.step.run("one", step, "one")
        pair = await ctx.group.parallel((lambda: ctx.step.run("p1", step, "p1"),
                                         lambda: ctx.step.run("p2", step, "p2")))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        waited = await ctx.step.wait_for_event("maybe", event="rs/never", timeout=datetime.timedelta(seconds=1))
        doubled = await ctx.step.invoke("kid", function=child, data={"n": 21})
        three = await ctx.step.run("three", step, "three")
        four = await ctx.step.run("four", step, "four")
        return {"steps": [one, *pair, three, four], "waited": waited is not None, "kid": doubled}

    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="rs/wait"), retries=0)
    async def waiter(ctx: inngest.Context) -> Any:
        first = await ctx.step.run("first", lambda: count("first") or "done")
        got = await ctx.step.wait_for_event("reply", event="rs/reply", if_exp="event.data.k == async.data.k",
                                            timeout=datetime.timedelta(hours=1))
        return {"first": first, "reply": None if got is None else got.data.get("v")}

    @client.create_function(fn_id="evolving", trigger=inngest.TriggerEvent(event="rs/evolve"), retries=0)
    async def evolving(ctx: inngest.Context) -> Any:
        async def step(name: str) -> str:
            count(name)
            if name == "c" and not state.get("v2"):
                raise inngest.NonRetriableError("c is broken in v1")
            return name

        if not state.get("v2"):          # the code at the time of the failure
            return [await ctx.step.run(n, step, n) for n in ("a", "b", "c")]
        # v2: a new step "z" before the failure, "b" renamed "b2", "c" fixed, "d" new
        return [await ctx.step.run(n, step, n) for n in ("z", "a", "b2", "c", "d")]

    return [child, flaky, waiter, evolving]


stack = sdk_stack("rs", _functions)


def _resume(engine: Any, run_id: str, body: Any = None, auth: bool = True, raw: bytes | None = None
            ) -> httpx.Response:
    headers = engine.headers if auth else {}
    if raw is not None:
        return httpx.post(f"{engine.url}/v1/runs/{run_id}/resume", content=raw,
                          headers={**headers, "content-type": "application/json"}, timeout=10)
    return httpx.post(f"{engine.url}/v1/runs/{run_id}/resume", json=body, headers=headers, timeout=10)


def _history(engine: Any, run_id: str) -> list[dict[str, Any]]:
    return list(engine.get(f"/v1/runs/{run_id}/history").json()["data"])


def test_a_failed_run_resumes_from_the_failed_step_without_calling_completed_steps_again(
        stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any, step_log: Any) -> None:
    engine, state, _ = stack
    state["log"] = log = step_log()
    state["fixed"] = False
    eid = send_event(engine, "rs/go", {"tag": "t1"})
    old = runs_for_event(engine, eid)[0]
    wait_for_run_status(engine, old, "Failed")
    assert sorted(log.lines()) == ["child", "one", "p1", "p2", "three"]

    state["fixed"] = True   # the bug is fixed
    r = _resume(engine, old)
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    new = data["run_id"]
    assert data["resumed_from"] == old and new != old
    assert data["kept_steps"] == 6, "one, p1, p2, the sleep, the wait and the invoke completed; three did not"
    done = wait_for_run_status(engine, new, "Completed")
    assert done["output"] == {"steps": ["one:t1", "p1:t1", "p2:t1", "three:t1", "four:t1"], "waited": False,
                              "kid": 42}
    assert sorted(log.lines()) == ["child", "four", "one", "p1", "p2", "three", "three"], \
        "only the failed step and what follows ran again; the invoked function was not started again"

    assert done["resume_of"] == old and done["event_id"] == eid, "same event, linked to the old run"
    old_run = engine.get(f"/v1/runs/{old}").json()["data"]
    assert old_run["status"] == "Failed" and old_run["resumed_as"] == [new] and old_run["resume_of"] is None
    assert any(h["type"] == "run_resumed_as" and new in (h.get("detail") or "") for h in _history(engine, old))
    assert any(h["type"] == "run_resumed_from" and old in (h.get("detail") or "") for h in _history(engine, new))
    assert len(engine.get(f"/v1/events/{eid}/runs").json()["data"]) == 2

    # A Completed run, and a run that was resumed already, are refused with 409 (nothing starts).
    for ref, words in ((new, "Completed"), (old, "already resumed")):
        refused = _resume(engine, ref)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "not_resumable" and words in refused.json()["error"]
    assert len(engine.get(f"/v1/events/{eid}/runs").json()["data"]) == 2

    # The dashboard: the JSON twins link both ways; its Resume button refuses an ended run the same way.
    with httpx.Client(base_url=engine.url, timeout=10) as browser:
        assert browser.get(f"/runs/{old}.json").json()["run"]["resumed_as"] == [new]
        assert browser.get(f"/runs/{new}.json").json()["run"]["resume_of"] == old
        page = browser.get(f"/runs/{old}").text
        assert 'data-testid="resumed-as"' in page and 'data-testid="resume-form"' not in page
        token = re.findall(r'name="csrf_token" value="([0-9a-f]+)"', page)[-1]
        refused = browser.post(f"/runs/{new}/resume", data={"csrf_token": token},
                               headers={"Accept": "application/json"})
        assert refused.status_code == 409 and refused.json()["code"] == "not_resumable", refused.text


def test_a_cancelled_run_resumes_and_a_running_one_is_refused(
        stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any, step_log: Any) -> None:
    engine, state, _ = stack
    state["log"] = log = step_log()
    eid = send_event(engine, "rs/wait", {"k": "c1"})
    old = runs_for_event(engine, eid)[0]
    wait_for(lambda: log.count("first") == 1 and engine.get(f"/v1/runs/{old}").json()["data"]["status"] == "Running")
    refused = _resume(engine, old)
    assert refused.status_code == 409 and "Running" in refused.json()["error"], refused.text

    assert httpx.delete(f"{engine.url}/v1/runs/{old}", headers=engine.headers, timeout=5).status_code == 200
    wait_for_run_status(engine, old, "Cancelled")
    r = _resume(engine, old, {})
    assert r.status_code == 201, r.text
    new = r.json()["data"]["run_id"]
    assert r.json()["data"]["kept_steps"] == 1
    # The resumed run waits again (the wait had not ended); an answer now lets it finish.
    wait_for(lambda: any(h["type"] == "run_resumed_from" for h in _history(engine, new))
             and engine.get(f"/v1/runs/{new}").json()["data"]["status"] == "Running")

    def answered() -> bool:
        send_event(engine, "rs/reply", {"k": "c1", "v": "yes"})
        return bool(engine.get(f"/v1/runs/{new}").json()["data"]["status"] == "Completed")

    wait_for(answered)
    assert engine.get(f"/v1/runs/{new}").json()["data"]["output"] == {"first": "done", "reply": "yes"}
    assert log.count("first") == 1, "the completed step was not called again"


def test_resume_with_edited_data_uses_a_new_event_with_the_same_name(
        stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any, step_log: Any) -> None:
    engine, state, _ = stack
    state["log"] = step_log()
    state["fixed"] = False
    eid = send_event(engine, "rs/go", {"tag": "before"})
    old = runs_for_event(engine, eid)[0]
    wait_for_run_status(engine, old, "Failed")
    state["fixed"] = True
    r = _resume(engine, old, {"data": {"tag": "after"}})
    assert r.status_code == 201, r.text
    new = r.json()["data"]["run_id"]
    done = wait_for_run_status(engine, new, "Completed")
    # Kept steps keep their stored results; the steps that run now see the edited input.
    assert done["output"]["steps"] == ["one:before", "p1:before", "p2:before", "three:after", "four:after"]
    assert done["event_id"] != eid
    event = engine.get(f"/v1/events/{done['event_id']}").json()["data"]
    assert event["name"] == "rs/go" and event["data"] == {"tag": "after"}
    # The new event started no other run: only the resume uses it.
    assert [x["run_id"] for x in engine.get(f"/v1/events/{done['event_id']}/runs").json()["data"]] == [new]


def test_resume_after_the_code_changed_runs_new_and_renamed_steps_and_ignores_vanished_ones(
        stack: Any, send_event: Any, runs_for_event: Any, wait_for_run_status: Any, step_log: Any) -> None:
    engine, state, _ = stack
    state["log"] = log = step_log()
    state["v2"] = False
    eid = send_event(engine, "rs/evolve", {})
    old = runs_for_event(engine, eid)[0]
    wait_for_run_status(engine, old, "Failed")
    assert log.lines() == ["a", "b", "c"]
    state["v2"] = True
    r = _resume(engine, old)
    assert r.status_code == 201 and r.json()["data"]["kept_steps"] == 2, r.text
    done = wait_for_run_status(engine, r.json()["data"]["run_id"], "Completed")
    assert done["output"] == ["z", "a", "b2", "c", "d"]
    # "a" kept its result; "z" (new, before the failure) and "b2" (renamed) ran; "b"'s kept result is unused.
    assert log.lines() == ["a", "b", "c", "z", "b2", "c", "d"]


@pytest.mark.parametrize(("body", "status"), [(b"[1]", 400), (b'{"data": 3}', 400), (b'{"inputs": {}}', 400),
                                              (b"{not json", 400)])
def test_bad_bodies_and_unknown_runs_are_refused_clearly(stack: Any, body: bytes, status: int) -> None:
    engine, _, _ = stack
    r = _resume(engine, "01J00000000000000000000000", raw=body)
    assert r.status_code == status, r.text
    assert r.json()["code"] in ("invalid_resume", "invalid_input") and r.json()["hint"]
    missing = _resume(engine, "01J00000000000000000000000")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_production_requires_the_bearer(stack: Any) -> None:
    engine, _, _ = stack
    if engine.mode != "production":
        pytest.skip("dev mode has no REST auth")
    r = _resume(engine, "01J00000000000000000000000", auth=False)
    assert r.status_code == 401
