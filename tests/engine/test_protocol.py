"""protocol.parse_response and the time helpers, table-tested (no I/O)."""

from __future__ import annotations

import json

import pytest

from agentcmd.engine.protocol import (
    Op,
    Opcode,
    ResponseKind,
    error_memo,
    iso_ms,
    parse_duration_ms,
    parse_response,
    parse_retry_after,
    parse_time_ms,
    sleep_until_ms,
    step_memo_data,
)

NOW = 1_735_689_600_000
SDK = {"x-inngest-sdk": "inngest-py:v0.5.19"}
STEP_RUN = {"id": "857c", "op": "StepRun", "name": "fetch", "displayName": "fetch", "opts": None,
            "userland": {"id": "fetch", "index": None}, "data": {"email": "a@b.c"}}


@pytest.mark.parametrize(("status", "headers", "body", "kind", "retriable", "n_ops"), [
    (200, SDK, b'{"ok": true}', ResponseKind.DONE, True, 0),
    (200, SDK, b"", ResponseKind.DONE, True, 0),
    (206, SDK, json.dumps([STEP_RUN]).encode(), ResponseKind.OPS, True, 1),
    (206, SDK, json.dumps(STEP_RUN).encode(), ResponseKind.OPS, True, 1),
    (206, SDK, b"null", ResponseKind.OPS, True, 0),
    (206, SDK, json.dumps([STEP_RUN, {**STEP_RUN, "id": "x", "op": "StepPlanned"}]).encode(),
     ResponseKind.OPS, True, 2),
    (206, {**SDK, "X-Inngest-No-Retry": "true"}, json.dumps([{**STEP_RUN, "op": "StepError"}]).encode(),
     ResponseKind.OPS, False, 1),
    (206, SDK, b'[{"op": "StepRun", "data"', ResponseKind.INTERNAL_ERROR, True, 0),   # truncated JSON
    (206, SDK, b'[1, 2]', ResponseKind.INTERNAL_ERROR, True, 0),
    (500, SDK, b'{"code":"unknown","message":"boom","name":"E","stack":"t"}', ResponseKind.FUNCTION_ERROR, True, 0),
    (500, {**SDK, "x-inngest-no-retry": "true"}, b'{"code":"non_retriable_error","message":"no","name":"N"}',
     ResponseKind.FUNCTION_ERROR, False, 0),
    (500, {}, b"<html><body>Internal Server Error</body></html>", ResponseKind.INTERNAL_ERROR, True, 0),
    (401, {}, b'{"message":"Unauthorized"}', ResponseKind.INTERNAL_ERROR, True, 0),
    (404, SDK, b'{"code":"function_not_found","message":"nope","name":"E"}', ResponseKind.FUNCTION_ERROR, True, 0),
    (204, SDK, b"", ResponseKind.INTERNAL_ERROR, True, 0),
    (502, {}, b"", ResponseKind.INTERNAL_ERROR, True, 0),
    # The app's "shutting down, ask again" (docs/engine.md): with or without the SDK header; a 503 without
    # X-Agentcmd-Interrupted stays what it was (not from the SDK: internal; from the SDK: its error).
    (503, {"X-Agentcmd-Interrupted": "shutting down"}, b'{"error":"shutting down","code":"interrupted"}',
     ResponseKind.INTERRUPTED, True, 0),
    (503, {**SDK, "x-agentcmd-interrupted": "shutting down"}, b"", ResponseKind.INTERRUPTED, True, 0),
    (503, {}, b"Service Unavailable", ResponseKind.INTERNAL_ERROR, True, 0),
    (503, SDK, b'{"message":"busy","name":"E"}', ResponseKind.FUNCTION_ERROR, True, 0),
    (500, {"X-Agentcmd-Interrupted": "x"}, b"", ResponseKind.INTERNAL_ERROR, True, 0),
])
def test_parse_response_table(status: int, headers: dict[str, str], body: bytes, kind: ResponseKind,
                              retriable: bool, n_ops: int) -> None:
    resp = parse_response(status, headers, body, NOW)
    assert resp.kind == kind
    assert resp.retriable == retriable
    assert len(resp.ops) == n_ops


def test_an_interrupted_answer_says_why() -> None:
    resp = parse_response(503, {"X-Agentcmd-Interrupted": "the app  is\nshutting down"}, b"", NOW)
    assert resp.message == "the app answered 503 interrupted: the app is shutting down"


def test_function_error_keeps_raw_body_and_message() -> None:
    body = b'{"code":"unknown","message":"boom","name":"MyError","stack":"Traceback"}'
    resp = parse_response(500, SDK, body, NOW)
    assert resp.body == body.decode()
    assert resp.error is not None and resp.error["name"] == "MyError"
    assert "boom" in resp.message


def test_not_an_sdk_says_so() -> None:
    resp = parse_response(200, {"content-type": "text/html"}, b"<html>hello</html>", NOW)
    assert resp.kind == ResponseKind.INTERNAL_ERROR
    assert "did not come from the Inngest SDK" in resp.message and "proxy" in resp.message


def test_sdk_401_is_a_signature_problem() -> None:
    resp = parse_response(401, {"x-inngest-sdk-handled": "true"}, b'{"message":"Unauthorized"}', NOW)
    assert "signature" in resp.message


def test_streamed_201_unwraps_the_real_answer() -> None:
    inner = {"status": 206, "headers": {"x-inngest-no-retry": "true"}, "body": json.dumps([STEP_RUN])}
    resp = parse_response(201, SDK, b"   " + json.dumps(inner).encode(), NOW)
    assert resp.kind == ResponseKind.OPS and not resp.retriable
    assert resp.ops[0].data == {"email": "a@b.c"}


def test_wait_for_event_ops_come_first() -> None:
    ops = [{**STEP_RUN, "op": "StepPlanned", "id": "a"}, {**STEP_RUN, "op": "WaitForEvent", "id": "b"}]
    resp = parse_response(206, SDK, json.dumps(ops).encode(), NOW)
    assert [o.op for o in resp.ops] == ["WaitForEvent", "StepPlanned"]


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-01-01T00:00:05.000Z", NOW + 5000),
    ("3", NOW + 3000),
    ("0", NOW + 1000),                       # clamped to >= 1 s
    ("2024-01-01T00:00:00Z", NOW + 1000),    # in the past -> 1 s
    ("999999999", NOW + 24 * 3600 * 1000),   # clamped to 24 h
    ("Wed, 01 Jan 2025 00:00:10 GMT", NOW + 10_000),
    ("garbage", None),
    (None, None),
])
def test_retry_after(value: str | None, expected: int | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(("text", "ms"), [
    ("90s", 90_000), ("1m", 60_000), ("1h30m", 5_400_000), ("2w", 1_209_600_000), ("1d", 86_400_000),
    ("500ms", 500), ("1.5h", 5_400_000), ("10", 10_000),
])
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("bad", ["", "1x", "h1", "1h 2m", "-1s"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(bad)


def test_sleep_wake_time_from_name_or_duration() -> None:
    assert sleep_until_ms(Op("a", "Sleep", name="2025-01-01T00:00:02.000Z"), NOW) == NOW + 2000
    assert sleep_until_ms(Op("a", "Sleep", name="1s"), NOW) == NOW + 1000
    assert sleep_until_ms(Op("a", "Sleep", name="x", opts={"duration": "2m"}), NOW) == NOW + 120_000
    assert sleep_until_ms(Op("a", "Sleep", name="2020-01-01T00:00:00Z"), NOW) == NOW


def test_memo_shapes() -> None:
    assert step_memo_data(Op("a", Opcode.STEP_RUN, data=[1, 2])) == {"data": [1, 2]}
    assert step_memo_data(Op("a", Opcode.STEP_RUN, data=None)) == {"data": None}
    assert step_memo_data(Op("a", Opcode.STEP, data={"data": 1})) == {"data": 1}
    assert error_memo({"message": "m"}) == {"error": {"message": "m", "name": "Error"}}


def test_times_round_trip() -> None:
    assert iso_ms(NOW + 7) == "2025-01-01T00:00:00.007Z"
    assert parse_time_ms("2025-01-01T00:00:00.007Z") == NOW + 7


@pytest.mark.parametrize("value", [
    {"b": 1, "a": [True, None, "é☃️"], "c": {"z": "\n\t\u0001"}},
    {"f": 1.0, "g": 1e21, "h": 0.1, "i": -0.0},
    {"é": 1, "z": 2, "\U0001f600": 3, "\ue000": 4},
    {"big": 2**60},
    [1, "two", 3.5],
])
def test_canonical_matches_the_sdks_jcs(value: object) -> None:
    import jcs

    from agentcmd.engine.protocol import canonical

    assert canonical(value).encode() == jcs.canonicalize(value)


def test_request_body_is_canonical_as_the_sdk_recomputes_it() -> None:
    import jcs

    from agentcmd.engine.executor import request_body
    from agentcmd.engine.protocol import canonical
    from agentcmd.engine.store.models import CallContext, QueueItem, QueueKind

    event = {"name": "app/x", "data": {"n": 1.5, "s": "☃"}, "id": "01E", "ts": 1, "user": {}}
    ctx = CallContext(item=QueueItem(7, QueueKind.STEP, "01R", "step", 0, 2, {}), run_id="01R",
                      function_slug="app-%$^&*(_+{|:<?☃️", url="http://x/api?fnId=a&stepId=step",
                      event_json=canonical(event), events_json="[" + canonical(event) + "]",
                      steps={"bb": canonical({"data": [1, 2.0]}), "aa": canonical(None)},
                      force_plan=True, max_attempts=5, status="Running")
    body = request_body(ctx)
    assert jcs.canonicalize(json.loads(body)) == body
    parsed = json.loads(body)
    assert parsed["ctx"]["stack"] == {"stack": ["bb", "aa"], "current": 2}
    assert parsed["ctx"]["disable_immediate_execution"] is True and parsed["use_api"] is False


def test_big_state_is_left_for_the_sdk_to_fetch() -> None:
    from agentcmd.engine.executor import MAX_INLINE_STATE, request_body
    from agentcmd.engine.protocol import canonical
    from agentcmd.engine.store.models import CallContext, QueueItem, QueueKind

    big = canonical({"data": "x" * (MAX_INLINE_STATE // 2)})
    event = canonical({"name": "e", "data": {}, "id": "1", "ts": 1})
    ctx = CallContext(item=QueueItem(1, QueueKind.STEP, "R", "step", 0, 0, {}), run_id="R", function_slug="a-f",
                      url="http://x/a", event_json=event, events_json=f"[{event}]",
                      steps={"a": big, "b": big, "c": big}, force_plan=False, max_attempts=1, status="Running")
    body = json.loads(request_body(ctx))
    assert body["use_api"] is True and body["steps"] == {} and body["ctx"]["stack"]["stack"] == ["a", "b", "c"]
    assert body["events"] == [json.loads(event)] and body["event"]["name"] == "e"
