"""executor.decide: what one SDK answer does to a run (pure, table-tested)."""

from __future__ import annotations

import json

import pytest

from agentcmd.engine.backoff import Backoff
from agentcmd.engine.executor import decide
from agentcmd.engine.protocol import parse_response
from agentcmd.engine.registry import Registry, parse_function
from agentcmd.engine.store.models import CallContext, QueueItem, QueueKind, RunStatus

NOW = 1_735_689_600_000
SDK = {"x-inngest-sdk": "inngest-py:v0.5.19"}
BACKOFF = Backoff(flat_ms=500)


def ctx(attempt: int = 0, max_attempts: int = 3, step: str = "step") -> CallContext:
    return CallContext(item=QueueItem(1, QueueKind.STEP, "R", step, NOW, attempt, {}), run_id="R",
                       function_slug="app-fn", url="http://x/api?fnId=app-fn&stepId=step",
                       event_json='{"name":"e","data":{"k":1}}', events_json="[]", steps={}, force_plan=False,
                       max_attempts=max_attempts, status="Running")


def op(kind: str, id_: str = "h1", **kw: object) -> dict[str, object]:
    return {"id": id_, "op": kind, "name": kw.pop("name", "s1"), "displayName": "s1", "opts": kw.pop("opts", None),
            "data": kw.pop("data", None), **kw}


def answer(status: int, body: object, headers: dict[str, str] | None = None, c: CallContext | None = None):  # type: ignore[no-untyped-def]
    resp = parse_response(status, {**SDK, **(headers or {})}, json.dumps(body).encode(), NOW)
    return decide(c or ctx(), resp, NOW, BACKOFF, Registry())


def test_200_completes_with_the_raw_body() -> None:
    out = answer(200, {"ok": True})
    assert out.finish == (RunStatus.COMPLETED, '{"ok": true}', None)


def test_step_run_memoizes_data() -> None:
    out = answer(206, [op("StepRun", data={"x": 1})])
    assert [(m.step_id, m.memo, m.failed) for m in out.memos] == [("h1", {"data": {"x": 1}}, False)]
    assert out.finish is None and out.retry_at is None


@pytest.mark.parametrize(("attempt", "headers", "retried"), [
    (0, {}, True),                                  # attempts remain
    (2, {}, False),                                 # last attempt (max 3)
    (0, {"x-inngest-no-retry": "true"}, False),     # nested step / non-retriable
])
def test_step_error_retries_or_becomes_final(attempt: int, headers: dict[str, str], retried: bool) -> None:
    out = answer(206, [op("StepError", error={"name": "E", "message": "m"})], headers, ctx(attempt))
    if retried:
        assert out.retry_at == NOW + 500 and not out.memos
    else:
        assert out.retry_at is None and out.memos[0].failed
        assert out.memos[0].memo == {"error": {"name": "E", "message": "m"}}


def test_retry_after_wins_over_backoff() -> None:
    out = answer(500, {"code": "retry_after_error", "message": "later", "name": "RetryAfterError"},
                 {"retry-after": "2025-01-01T00:00:03.000Z"})
    assert out.retry_at == NOW + 3000


@pytest.mark.parametrize(("status", "headers", "attempt", "final"), [
    (500, {}, 0, False),
    (500, {}, 2, True),
    (500, {"x-inngest-no-retry": "true"}, 0, True),
])
def test_function_errors(status: int, headers: dict[str, str], attempt: int, final: bool) -> None:
    body = {"code": "unknown", "message": "boom", "name": "MyError", "stack": "tb"}
    out = answer(status, body, headers, ctx(attempt))
    if final:
        assert out.finish is not None and out.finish[0] == RunStatus.FAILED
        assert json.loads(out.finish[1] or "") == body
        expected = "NonRetriableError" if headers else "invalid status code: 500"
        assert out.finish[2] == expected
    else:
        assert out.retry_at == NOW + 500 and out.finish is None


def test_network_errors_are_internal_and_retried_then_fail_with_an_engine_error() -> None:
    from agentcmd.engine.protocol import ResponseKind, SDKResponse

    resp = SDKResponse(ResponseKind.INTERNAL_ERROR, 0, message="SDK unreachable at http://x: refused")
    assert decide(ctx(0), resp, NOW, BACKOFF, Registry()).retry_at == NOW + 500
    final = decide(ctx(2), resp, NOW, BACKOFF, Registry())
    assert final.finish is not None and final.finish[0] == RunStatus.FAILED
    assert "unreachable" in json.loads(final.finish[1] or "")["message"]


def test_parallel_plans_force_planning_and_keep_race_mode() -> None:
    out = answer(206, [op("StepPlanned", "a"), op("StepPlanned", "b", opts={"parallelMode": "race"})])
    assert out.force_plan and out.planned == [("a", False), ("b", True)]


def test_sleep_wait_and_invoke_park_the_step() -> None:
    out = answer(206, [op("Sleep", "s", name="2025-01-01T00:00:02.000Z")])
    assert out.waiting == ["s"] and out.items[0].kind == QueueKind.SLEEP and out.items[0].ready_at == NOW + 2000
    out = answer(206, [op("WaitForEvent", "w", name="app/reply", opts={"if": "async.data.k == 1", "timeout": "1m"})])
    [pause] = out.pauses
    assert (pause.kind, pause.event_name, pause.expression, pause.expires_at) == ("wait", "app/reply",
                                                                                   "async.data.k == 1", NOW + 60_000)
    assert pause.payload["trigger"] == {"name": "e", "data": {"k": 1}}
    assert out.items[0].kind == QueueKind.WAIT_TIMEOUT


def test_invoke_of_an_unknown_function_fails_the_step_at_once() -> None:
    out = answer(206, [op("InvokeFunction", "i", opts={"function_id": "nope", "payload": {"data": {}}})])
    assert out.memos[0].failed and "could not find function" in out.memos[0].memo["error"]["message"]


def test_invoke_emits_the_invoked_event_with_a_correlation_id() -> None:
    reg = Registry()
    reg.replace([parse_function({"id": "app-child", "steps": {"step": {"runtime": {"url": "http://x/a"}}}},
                                "app")])
    resp = parse_response(206, SDK, json.dumps([op("InvokeFunction", "i", opts={
        "function_id": "app-child", "payload": {"data": {"n": 1}}, "timeout": "30s"})]).encode(), NOW)
    out = decide(ctx(), resp, NOW, BACKOFF, reg)
    [event] = out.events
    assert event.name == "inngest/function.invoked" and event.body["data"]["n"] == 1
    assert event.body["data"]["_inngest"]["correlation_id"] == "R.i"
    assert out.pauses[0].correlation == "R.i" and out.pauses[0].expires_at == NOW + 30_000


def test_default_retries_are_four_so_five_attempts() -> None:
    fn = parse_function({"id": "a-f", "triggers": [{"event": "e"}],
                         "steps": {"step": {"runtime": {"url": "http://x/a?fnId=a-f&stepId=step"}}}}, "a")
    assert fn.max_attempts == 5


def test_call_url_replaces_step_id_and_keeps_the_rest_byte_for_byte() -> None:
    from agentcmd.engine.executor import call_url

    base = "http://h:1/api/inngest?fnId=app-%25%24%5E%26%2A%28_%2B%7B%7C%3A%3C%3F%E2%98%83%EF%B8%8F&stepId=step"
    assert call_url(base, "x", "abc123") == base.replace("stepId=step", "stepId=abc123")
    assert call_url("http://h/api", "app-fn", "step") == "http://h/api?fnId=app-fn&stepId=step"
