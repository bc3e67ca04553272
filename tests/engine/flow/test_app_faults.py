"""An app that hangs or answers garbage: that attempt fails with a clear error and is retried per policy.
An app that does not answer at all (closed before the response head, 503-interrupted) interrupts the
call instead: no attempt is used, the call goes out again (docs/engine.md, interrupted calls).

Real engine subprocesses (dev with ``--call-timeout``, production with
``AGENTCMD_ENGINE_CALL_TIMEOUT``), the official ``inngest`` SDK under uvicorn,
and between them ``FaultyFront``: a loopback HTTP/1.1 server that relays the
engine's calls to the SDK app byte for byte, except the first calls of a run
whose event asks it to spoil them (``data.fault``, ``data.bad_calls``, default 1).
The SDK itself hangs a step on attempt 0 for the timeout tests. (Attempts are
counted per step, as in Inngest: the call after a step completes is attempt 0
again, which is why faults are keyed on a run's calls, not on ``ctx.attempt``.)

Covered before this module (and not repeated here): ``parse_response`` on an
HTML 500, a truncated 206 JSON body and a non-SDK 200 (tests/engine/
test_protocol.py), the HTTP/1.1 client's timeout and refused connection
(tests/engine/test_http1.py), an app gone after sync failing the run after its retries
(tests/engine/test_failures.py). New here: the call timeout as a setting, hung steps,
and garbage on the wire (non-JSON 200, HTML 500, a truncated body, a
connection closed in the middle of the answer) end to end; interruptions
(a connection closed mid-headers or before answering, the app's 503 with
``X-Agentcmd-Interrupted``) that use no retry, even with ``retries=0``; and
production refusing an answer without the SDK's signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest
from tests.harness.engine import (
    EngineProc,
    SdkApp,
    _make_engine,
    client_for,
    run_engine_cli,
    send_event,
    wait_for_run_status,
)
from tests.polling import wait_for

from agentcmd.config import load_settings
from agentcmd.config.settings import ENGINE_CALL_TIMEOUT_DEFAULT_S
from agentcmd.config.sources import write_config_file
from agentcmd.engine.driver import DEFAULT_TIMEOUT_S
from agentcmd.errors import ConfigError

CALL_TIMEOUT_S = 2.0
HANG_BOUND_S = 30.0          # a hung handler gives up after this, so teardown never waits forever
SDK_HEADER = b"x-inngest-sdk: inngest-py:v0.5.19\r\n"


def _http(status: str, headers: bytes, body: bytes, length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return b"HTTP/1.1 " + status.encode() + b"\r\n" + headers + f"Content-Length: {n}\r\n".encode() + \
        b"Connection: close\r\n\r\n" + body


# fault -> (bytes written before closing the connection, what the run's error must say)
FAULTS: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "not-json-200": (_http("200 OK", b"Content-Type: text/plain\r\n", b"ok, but this is not JSON"),
                     ("HTTP 200 without an x-inngest-sdk header: the answer did not come from the Inngest SDK",
                      "ok, but this is not JSON")),
    "html-500": (_http("500 Internal Server Error", b"Content-Type: text/html\r\n",
                       b"<html><head><title>500 Internal Server Error</title></head>"
                       b"<body><h1>Internal Server Error</h1><hr>nginx</body></html>"),
                 ("HTTP 500 without an x-inngest-sdk header", "Internal Server Error")),
    "cut-json-206": (_http("206 Partial Content", b"Content-Type: application/json\r\n" + SDK_HEADER,
                           b'[{"op": "StepRun", "id": "ab'),
                     ("206 body is not JSON",)),
    "truncated-body": (_http("206 Partial Content", b"Content-Type: application/json\r\n" + SDK_HEADER,
                             b'[{"op": "StepRun", "id": "', length=400),
                       ("closed mid-response", "the app broke off its answer")),
}
# fault -> (bytes written before closing, what the attempt_interrupted history entry must say)
INTERRUPTIONS: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "closed-mid-headers": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + SDK_HEADER,
                           ("closed the connection before answering", "closed mid-headers")),
    "closed-without-answer": (b"", ("closed the connection before answering", "closed before the response started")),
    "503-interrupted": (_http("503 Service Unavailable", b"Content-Type: application/json\r\n"
                              b"X-Agentcmd-Interrupted: the app is shutting down\r\n",
                              b'{"error": "the app is shutting down", "code": "interrupted"}'),
                        ("the app answered 503 interrupted: the app is shutting down",)),
}
# An answer that looks like the SDK's but carries no signature: production must refuse it.
UNSIGNED = {"unsigned-200": (_http("200 OK", b"Content-Type: application/json\r\n" + SDK_HEADER, b'"forged result"'),
                             ("unsigned answer from",))}
SPOILERS = {**FAULTS, **INTERRUPTIONS, **UNSIGNED}


class FaultyFront:
    """HTTP/1.1 on 127.0.0.1:0 in front of the SDK app: relays requests, or spoils the ones asked for.

    One request per connection (it answers ``Connection: close``), so every
    engine call arrives on a fresh connection and the relay stays trivial.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.spoiled: list[tuple[str, str, int]] = []      # (run id, fault, attempt)
        self._calls: dict[str, int] = {}                    # run id -> calls seen
        self._lock = threading.Lock()
        front = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):   # the engine gave up on this call (timeout)
                    front.handle(self.rfile, self.connection)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/inngest"

    def handle(self, rfile: Any, conn: socket.socket) -> None:
        head: list[bytes] = []
        while (line := rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
            head.append(line)
        if not head:
            return
        length = next((int(h.split(b":", 1)[1]) for h in head if h.lower().startswith(b"content-length:")), 0)
        body = rfile.read(length) if length else b""
        fault = self._fault_for(head[0], body)
        if fault is not None:
            conn.sendall(SPOILERS[fault][0])
            return
        kept = [h for h in head[1:] if not h.lower().startswith(b"connection:")]
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=HANG_BOUND_S + 5) as up:
            up.sendall(head[0] + b"".join(kept) + b"Connection: close\r\n\r\n" + body)
            while chunk := up.recv(65536):
                conn.sendall(chunk)

    def _fault_for(self, request_line: bytes, body: bytes) -> str | None:
        if not request_line.startswith(b"POST"):
            return None
        try:
            call = json.loads(body)
            data, run_id, attempt = call["event"]["data"], str(call["ctx"]["run_id"]), int(call["ctx"]["attempt"])
        except (ValueError, KeyError, TypeError):
            return None
        fault = data.get("fault")
        with self._lock:
            seen = self._calls[run_id] = self._calls.get(run_id, 0) + 1
            if fault in SPOILERS and seen <= int(data.get("bad_calls", 1)):
                self.spoiled.append((run_id, str(fault), attempt))
                return str(fault)
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Stack:
    def __init__(self, engine: EngineProc, front: FaultyFront) -> None:
        self.engine = engine
        self.front = front
        self.hung: dict[str, int] = {}                   # run id -> attempts that hung
        self.release = threading.Event()

    def history(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.engine.get(f"/v1/runs/{run_id}/history").json()["data"])

    def start(self, event: str, data: dict[str, Any] | None = None) -> str:
        event_id = send_event(self.engine, event, data or {})
        return str(wait_for(lambda: [
              r["run_id"] for r in self.engine.get(f"/v1/events/{event_id}/runs").json()["data"]],
                            what=f"the run of {event}")[0])


def _seconds(rfc3339: str) -> float:
    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def _functions(client: Any, stack_ref: list[Stack]) -> list[Any]:
    def hanging(fn_id: str, retries: int) -> Any:
        @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=f"faults/{fn_id}"), retries=retries)
        async def fn(ctx: inngest.Context) -> str:
            async def work() -> str:
                if ctx.attempt == 0:
                    stack = stack_ref[0]
                    stack.hung[ctx.run_id] = stack.hung.get(ctx.run_id, 0) + 1
                    deadline = time.monotonic() + HANG_BOUND_S
                    while not stack.release.is_set() and time.monotonic() < deadline:
                        await asyncio.sleep(0.02)
                return f"answered on attempt {ctx.attempt}"

            return await ctx.step.run("work", work)

        return fn

    def plain(fn_id: str, retries: int) -> Any:
        @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=f"faults/{fn_id}"), retries=retries)
        async def fn(ctx: inngest.Context) -> str:
            async def work() -> str:
                return f"step ran on attempt {ctx.attempt}"

            return await ctx.step.run("work", work)

        return fn

    return [hanging("hang-retried", 1), hanging("hang-no-retries", 0), plain("quick", 0),
            plain("echo", 1), plain("echo-no-retries", 0)]


@pytest.fixture(scope="module", params=["dev", "production"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Per mode: an engine with a 2 s call timeout (the flag in dev, the env var in production),
    the SDK app, and the faulty front the engine calls it through."""
    mode = str(request.param)
    timeout = f"{CALL_TIMEOUT_S:g}"
    if mode == "dev":
        engine = _make_engine(tmp_path_factory.mktemp("app-faults"), 0, mode, args=("--call-timeout", timeout))
    else:
        engine = _make_engine(tmp_path_factory.mktemp("app-faults"), 0, mode,
                              env={"AGENTCMD_ENGINE_CALL_TIMEOUT": timeout})
    engine.start()
    ref: list[Stack] = []                            # the handlers find the stack here once it exists
    client = client_for(engine, app_id="faults")
    app = SdkApp(client, _functions(client, ref))
    front = FaultyFront(app.port)
    stack = Stack(engine, front)
    ref.append(stack)
    try:
        headers = {"X-Inngest-Server-Kind": "cloud" if mode == "production" else "dev"}
        r = httpx.put(front.url, json={"url": front.url}, headers=headers, timeout=10)
        assert r.status_code == 200 and "error" not in r.json(), r.text
        yield stack
    finally:
        stack.release.set()
        app.stop()
        front.stop()
        engine.stop(5)


# -- the setting ------------------------------------------------------------------------------------------


def test_the_call_timeout_defaults_to_two_hours_and_layers_like_every_setting(
        agentcmd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().engine_call_timeout == ENGINE_CALL_TIMEOUT_DEFAULT_S == DEFAULT_TIMEOUT_S == 7200
    write_config_file(agentcmd_home / "config.json", {"engine_call_timeout": 600})
    assert load_settings().engine_call_timeout == 600
    monkeypatch.setenv("AGENTCMD_ENGINE_CALL_TIMEOUT", "90.5")
    assert load_settings().engine_call_timeout == 90.5
    assert load_settings(engine_call_timeout=3).engine_call_timeout == 3


@pytest.mark.parametrize("bad", ["0", "-1", "soon", "inf", "nan", "700000"])
def test_a_bad_call_timeout_in_the_environment_is_refused_naming_the_variable(
        agentcmd_home: Path, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("AGENTCMD_ENGINE_CALL_TIMEOUT", bad)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "AGENTCMD_ENGINE_CALL_TIMEOUT" in err.value.what and repr(bad) in err.value.what
    assert err.value.fix and "7200" in err.value.fix


@pytest.mark.parametrize(("command", "args", "env", "named"), [
    ("dev", ["--call-timeout", "0"], {}, "--call-timeout"),
    ("start", ["--call-timeout", "-5"], {}, "--call-timeout"),
    ("dev", [], {"AGENTCMD_ENGINE_CALL_TIMEOUT": "later"}, "AGENTCMD_ENGINE_CALL_TIMEOUT"),
])
def test_the_engine_cli_refuses_a_bad_call_timeout_before_starting(
        tmp_path: Path, command: str, args: list[str], env: dict[str, str], named: str) -> None:
    out = run_engine_cli("engine", command, *args,
                         env={"AGENTCMD_HOME": str(tmp_path / "home"), **env})
    assert out.returncode == 2, out
    assert f"error: engine call timeout ({named}" in out.stderr and "fix:" in out.stderr
    assert "Traceback" not in out.stderr


# -- a hung app --------------------------------------------------------------------------------------------


def test_a_hung_step_fails_its_attempt_after_the_call_timeout_and_the_retry_completes(stack: Stack) -> None:
    hung = stack.start("faults/hang-retried")
    wait_for(lambda: stack.hung.get(hung), what="the step to hang in the app")
    # The hung call holds one slot, not the engine: another run goes start to finish meanwhile.
    quick = stack.start("faults/quick")
    assert wait_for_run_status(stack.engine, quick, "Completed", timeout=10)["output"] == "step ran on attempt 0"
    assert [h["type"] for h in stack.history(hung)].count("attempt_failed") == 0, "quick run finished first"

    run = wait_for_run_status(stack.engine, hung, "Completed", timeout=20)
    assert run["output"] == "answered on attempt 1"
    history = stack.history(hung)
    [failed] = [h for h in history if h["type"] == "attempt_failed"]
    assert failed["attempt"] == 0
    assert f"timed out after {CALL_TIMEOUT_S:g} s" in failed["detail"]
    assert stack.front.url in failed["detail"] and "--call-timeout" in failed["detail"]
    waited = _seconds(failed["at"]) - _seconds(history[0]["at"])         # from run_scheduled
    assert CALL_TIMEOUT_S - 0.2 <= waited < CALL_TIMEOUT_S + 5, f"the setting was not applied: {waited:.2f} s"
    assert stack.hung[hung] == 1, "only attempt 0 hung"
    stack.release.set()


def test_a_hung_step_without_retries_fails_the_run_with_the_timeout(stack: Stack) -> None:
    stack.release.clear()
    run_id = stack.start("faults/hang-no-retries")
    run = wait_for_run_status(stack.engine, run_id, "Failed", timeout=20)
    stack.release.set()
    assert f"SDK call timed out after {CALL_TIMEOUT_S:g} s: {stack.front.url}" in run["error"]
    assert run["output"]["name"] == "EngineError" and run["output"]["code"] == "sdk_call_failed"
    assert run["output"]["message"] == run["error"]
    types = [h["type"] for h in stack.history(run_id)]
    assert "attempt_failed" not in types and types[-1] == "run_failed"
    assert stack.engine.get(f"/v1/runs/{run_id}/steps").json()["data"] == []


# -- garbage on the wire -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_garbage_fails_the_attempt_with_a_clear_error_and_the_retry_completes(stack: Stack, fault: str) -> None:
    run_id = stack.start("faults/echo", {"fault": fault})
    run = wait_for_run_status(stack.engine, run_id, "Completed")
    assert run["output"] == "step ran on attempt 1"
    assert [(f, a) for r, f, a in stack.front.spoiled if r == run_id] == [(fault, 0)]
    [failed] = [h for h in stack.history(run_id) if h["type"] == "attempt_failed"]
    assert failed["attempt"] == 0 and stack.front.url in failed["detail"]
    for words in FAULTS[fault][1]:
        assert words in failed["detail"], failed["detail"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_garbage_on_the_last_attempt_fails_the_run_with_the_error_visible(stack: Stack, fault: str) -> None:
    run_id = stack.start("faults/echo-no-retries", {"fault": fault})
    run = wait_for_run_status(stack.engine, run_id, "Failed")
    assert run["output"]["name"] == "EngineError" and run["output"]["code"] == "sdk_call_failed"
    assert stack.front.url in run["error"] and run["output"]["message"] == run["error"]
    for words in FAULTS[fault][1]:
        assert words in run["error"], run["error"]
    [ended] = [h for h in stack.history(run_id) if h["type"] == "run_failed"]
    assert ended["detail"] == run["error"]


def test_garbage_on_every_attempt_uses_up_the_retries_then_fails(stack: Stack) -> None:
    run_id = stack.start("faults/echo", {"fault": "html-500", "bad_calls": 9})
    run = wait_for_run_status(stack.engine, run_id, "Failed")
    assert [a for r, _, a in stack.front.spoiled if r == run_id] == [0, 1]      # retries=1: two attempts
    assert [h["type"] for h in stack.history(run_id)].count("attempt_failed") == 1
    assert "HTTP 500 without an x-inngest-sdk header" in run["error"]


# -- no answer at all: an interruption, not an attempt (docs/engine.md) --------------------------------


@pytest.mark.parametrize("fault", sorted(INTERRUPTIONS))
def test_no_answer_interrupts_the_call_without_using_a_retry(stack: Stack, fault: str) -> None:
    run_id = stack.start("faults/echo-no-retries", {"fault": fault})     # retries=0: one attempt only
    run = wait_for_run_status(stack.engine, run_id, "Completed")
    assert run["output"] == "step ran on attempt 0"
    assert run["waiting_for_app"] is None
    assert [(f, a) for r, f, a in stack.front.spoiled if r == run_id] == [(fault, 0)]
    history = stack.history(run_id)
    assert "attempt_failed" not in [h["type"] for h in history]
    [interrupted] = [h for h in history if h["type"] == "attempt_interrupted"]
    assert interrupted["attempt"] == 0 and "waiting for app faults" in interrupted["detail"]
    for words in INTERRUPTIONS[fault][1]:
        assert words in interrupted["detail"], interrupted["detail"]


def test_an_app_that_keeps_not_answering_is_asked_again_about_twice_a_second(stack: Stack) -> None:
    run_id = stack.start("faults/echo-no-retries", {"fault": "503-interrupted", "bad_calls": 5})
    run = wait_for_run_status(stack.engine, run_id, "Completed")
    assert run["output"] == "step ran on attempt 0"
    assert [a for r, _, a in stack.front.spoiled if r == run_id] == [0] * 5
    history = stack.history(run_id)
    types = [h["type"] for h in history]
    assert types.count("attempt_interrupted") == 1 and "attempt_failed" not in types   # one entry per wait
    took = _seconds(history[-1]["at"]) - _seconds(history[0]["at"])
    assert 1.5 <= took < 6, f"4 waits of ~0.5 s took {took:.2f} s"


# -- production: only the SDK's signed answers count ---------------------------------------------------------


def test_production_refuses_an_answer_without_the_sdk_signature(stack: Stack) -> None:
    run_id = stack.start("faults/echo", {"fault": "unsigned-200"})
    run = wait_for_run_status(stack.engine, run_id, "Completed")
    if stack.engine.mode == "dev":
        assert run["output"] == "forged result"     # dev has no keys: nothing is signed (docs/engine.md)
        return
    assert run["output"] == "step ran on attempt 1"
    [failed] = [h for h in stack.history(run_id) if h["type"] == "attempt_failed"]
    assert failed["detail"].startswith(f"unsigned answer from {stack.front.url}"), failed["detail"]
    assert "X-Inngest-Signature" in failed["detail"]


def test_production_fails_the_run_on_an_unsigned_answer_without_retries(stack: Stack) -> None:
    if stack.engine.mode == "dev":
        pytest.skip("dev mode signs nothing")
    run_id = stack.start("faults/echo-no-retries", {"fault": "unsigned-200"})
    run = wait_for_run_status(stack.engine, run_id, "Failed")
    assert run["error"].startswith("unsigned answer from") and stack.front.url in run["error"]
    assert run["output"]["code"] == "sdk_call_failed"
