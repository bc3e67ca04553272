"""A run's stream over real HTTP (server/live.py): step.cli output kept and streamed while the command
runs, server-sent events resumed with Last-Event-ID, ``end`` after the last event, the JSON twin, bad
run ids, and a stream that ends when the app server is stopped."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.polling import wait_for

SLOW = '''
from agentcmd import define_workflow

@define_workflow(id="slow", phases=["work"], retries=0)
async def slow(ctx, step):
    with step.phase("work"):
        await step.cli("talk", "for i in 1 2 3; do echo line-$i; done; "
                               "while [ ! -f go ]; do sleep 0.02; done; echo after-go >&2")
    return "done"
'''


def sse(resp: httpx.Response) -> Iterator[dict[str, Any]]:
    """The messages of an event stream as ``{"event", "id", "data"}`` (comments and retry skipped)."""
    message: dict[str, Any] = {}
    for line in resp.iter_lines():
        if not line:
            if "data" in message:
                yield message
            message = {}
            continue
        field, _, value = line.partition(": ")
        if field == "data":
            message["data"] = json.loads(value)
        elif field in ("event", "id"):
            message[field] = value


def read_until(messages: Iterator[dict[str, Any]], done: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for message in messages:
        seen.append(message)
        if done(seen):
            return seen
    raise AssertionError(f"the stream ended first: {seen}")


def outputs(seen: list[dict[str, Any]]) -> list[str]:
    return [m["data"]["text"] for m in seen if m.get("event") == "agent" and m["data"]["kind"] == "output"]


def test_cli_output_streams_live_while_the_command_runs_and_resumes_after_last_event_id(
        stack: Any, write_workflow: Any, project: Path) -> None:
    write_workflow("slow.py", SLOW)
    s = stack()
    run_id = s.app.post("/api/workflows/slow/runs", json={"input": {}}).json()["data"]["run_id"]
    url = f"{s.app.url}/api/runs/{run_id}/live"
    with httpx.stream("GET", url, timeout=30) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-store"
        messages = sse(resp)
        seen = read_until(messages, lambda ms: len(outputs(ms)) == 3 and any(
            m.get("event") == "run" and m["data"]["steps"] for m in ms))
        assert outputs(seen) == ["line-1", "line-2", "line-3"]
        # The command is still waiting for "go": what came, came while it ran.
        assert s.engine.runs[run_id]["status"] == "Running"
        run = [m for m in seen if m.get("event") == "run"][-1]["data"]
        assert run["run_id"] == run_id and run["status"] == "Running" and run["version"]
        assert [(x["step_id"], x["phase"], x["status"]) for x in run["steps"]] == [("work/talk", "work", "Running")]
        first = next(m for m in seen if m.get("event") == "agent")
        assert first["data"]["stream"] == "stdout" and first["data"]["step_id"] == "work/talk"
        assert first["data"]["agent"] is None and int(first["id"]) == first["data"]["seq"]
        (project / "go").write_text("")
        rest = read_until(messages, lambda ms: ms[-1].get("event") == "end")
    assert outputs(rest) == ["after-go"] and next(m for m in rest if m.get("event") == "agent")["data"]["stream"] \
        == "stderr"
    assert rest[-1]["data"] == {"status": "Completed"}
    events = [m for m in seen + rest if m.get("event") == "agent"]
    assert [int(m["id"]) for m in events] == [1, 2, 3, 4]
    ends = [m for m in rest if m.get("event") == "run"]
    assert ends and ends[-1]["data"]["status"] == "Completed"

    # A reconnecting browser sends Last-Event-ID: the rest of the kept events, then the end.
    with httpx.stream("GET", url, headers={"Last-Event-ID": "2"}, timeout=30) as resp:
        again = read_until(sse(resp), lambda ms: ms[-1].get("event") == "end")
    assert outputs(again) == ["line-3", "after-go"]
    assert [m["event"] for m in again][-2:] == ["run", "end"]
    with httpx.stream("GET", f"{s.app.url}/runs/{run_id}/live?after=3", timeout=30) as resp:   # the views' twin
        assert outputs(read_until(sse(resp), lambda ms: ms[-1].get("event") == "end")) == ["after-go"]

    body = s.app.get(f"/api/runs/{run_id}/stream").json()
    assert [e["text"] for e in body["data"]] == ["line-1", "line-2", "line-3", "after-go"]
    assert body["metadata"] == {"next_after": 4, "dropped": 0, "more": False}
    page = s.app.get(f"/api/runs/{run_id}/stream", params={"after": 1, "limit": 2}).json()
    assert [e["seq"] for e in page["data"]] == [2, 3] and page["metadata"]["more"] is True
    assert page["metadata"]["next_after"] == 3
    assert s.app.get(f"/runs/{run_id}/stream.json", params={"step": "work/talk"}).json()["data"] == body["data"]
    assert s.app.get(f"/runs/{run_id}/stream.json", params={"step": "other"}).json()["data"] == []


def test_unknown_and_hostile_run_ids_and_bad_parameters_are_clear_errors(stack: Any) -> None:
    s = stack()
    for path in ("/api/runs/run-nope/stream", "/api/runs/run-nope/live", "/runs/run-nope/stream.json",
                 "/runs/run-nope/live"):
        resp = s.app.get(path)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["code"] == "not_found" and resp.json()["hint"]
    for bad in ("..", "%2E%2E", "a%00b", "%20x"):
        for path in (f"/api/runs/{bad}/stream", f"/api/runs/{bad}/live", f"/runs/{bad}/stream.json"):
            resp = httpx.get(s.app.url + path, timeout=10)
            assert resp.status_code in (400, 404), (path, resp.status_code, resp.text)
            assert resp.status_code == 404 or "is not a run id" in resp.json()["error"]
    resp = httpx.get(s.app.url + "/api/runs/%2E%2E/stream", timeout=10)
    assert resp.status_code == 400 and resp.json()["hint"]
    for query in ("after=-1", "after=x", "limit=0", "limit=99999"):
        resp = httpx.get(f"{s.app.url}/api/runs/run-nope/stream?{query}", timeout=10)
        assert resp.status_code == 400 and "must be a whole number" in resp.json()["error"], (query, resp.text)


def test_the_stream_of_a_finished_run_is_kept_events_then_end(stack: Any, write_workflow: Any,
                                                              project: Path) -> None:
    write_workflow("slow.py", SLOW)
    (project / "go").write_text("")
    s = stack()
    run_id = s.app.post("/api/workflows/slow/runs", json={"input": {}}).json()["data"]["run_id"]
    wait_for(lambda: s.engine.runs[run_id]["status"] == "Completed", 20, "the run to complete")
    with httpx.stream("GET", f"{s.app.url}/api/runs/{run_id}/live", timeout=30) as resp:
        got = read_until(sse(resp), lambda ms: ms[-1].get("event") == "end")
    assert outputs(got) == ["line-1", "line-2", "line-3", "after-go"]
    assert got[-1]["data"] == {"status": "Completed"}
    assert [m["event"] for m in got if m["event"] != "agent"] == ["run", "end"]


def test_many_readers_share_one_engine_watcher(stack: Any, write_workflow: Any, project: Path) -> None:
    write_workflow("slow.py", SLOW)
    s = stack()
    run_id = s.app.post("/api/workflows/slow/runs", json={"input": {}}).json()["data"]["run_id"]
    streams: list[Any] = []
    try:
        for _ in range(5):
            cm = httpx.stream("GET", f"{s.app.url}/api/runs/{run_id}/live", timeout=30)
            resp = cm.__enter__()
            streams.append((cm, resp, sse(resp)))
        for _, _, messages in streams:
            read_until(messages, lambda ms: any(m.get("event") == "run" for m in ms))
        watches = s.app.app.state.run_watches
        assert list(watches) == [run_id] and watches[run_id].listeners == 5
    finally:
        for cm, _, _ in streams:
            cm.__exit__(None, None, None)
    wait_for(lambda: run_id not in s.app.app.state.run_watches, 10, "the watcher to stop with its last reader")
    (project / "go").write_text("")


def test_an_open_stream_ends_when_the_app_server_stops(write_workflow: Any, project: Path, tmp_path: Path) -> None:
    from tests.harness.processes import free_port
    from tests.workflows.fakeengine import FakeEngine, ServerThread

    write_workflow("slow.py", SLOW)
    engine = FakeEngine()
    engine_server = ServerThread(engine.app).start()
    port = free_port()
    log = open(tmp_path / "app.log", "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, "INNGEST_DEV": "1", "INNGEST_BASE_URL": engine_server.url}
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "agentcmd.server", "--port", str(port), "--project", str(project)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 30, "the app server",
                 lambda: (tmp_path / "app.log").read_text())
        engine.app_url = url
        run_id = httpx.post(f"{url}/api/workflows/slow/runs", json={"input": {}}, timeout=30).json()["data"]["run_id"]
        ended: dict[str, Any] = {}
        with httpx.stream("GET", f"{url}/api/runs/{run_id}/live", timeout=30) as resp:
            messages = sse(resp)
            read_until(messages, lambda ms: len(outputs(ms)) == 3)
            stopped = time.monotonic()
            os.kill(proc.pid, signal.SIGTERM)

            def drain() -> None:
                with __import__("contextlib").suppress(httpx.HTTPError):
                    ended["rest"] = list(messages)
                ended["after"] = time.monotonic() - stopped

            reader = threading.Thread(target=drain, daemon=True)
            reader.start()
            reader.join(15)
        assert "after" in ended, "the stream did not end when the app server stopped"
        assert ended["after"] < 5
        assert proc.wait(15) == 0, (tmp_path / "app.log").read_text()
        assert not [m for m in ended.get("rest", []) if m.get("event") == "end"]   # cut short, not over
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        for run in engine.runs.values():
            run["status"] = "Cancelled"
        engine_server.stop()
    # What was kept is still there for the next app server.
    kept = list((Path(os.environ["AGENTCMD_HOME"]) / "data" / "runs" / run_id / "stream").rglob("*.jsonl"))
    assert kept, "the stream was not flushed"


@pytest.fixture(autouse=True)
def _fresh_streams() -> Iterator[None]:
    from agentcmd.workflows import streamlog

    streamlog.forget_all()
    yield
    streamlog.forget_all()
