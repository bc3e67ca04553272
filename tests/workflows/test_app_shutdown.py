"""App server shutdown (interrupted calls, app side): a real ``python -m agentcmd.server``, a real step
command, a real signal. The in-flight SDK call is answered 503-interrupted, the step's process group
is gone, the step record says interrupted, and the server exits 0."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.processes import free_port, pid_alive
from tests.polling import wait_for

SLEEPER = '''
from agentcmd import define_workflow

@define_workflow(id="sleeper", phases=["work"], retries=2)
async def sleeper(ctx, step):
    with step.phase("work"):
        await step.cli("long", "sleep 30 & echo $! > child.pid; echo $$ > shell.pid; wait")
    return "done"
'''


def _gone(pid: int) -> bool:
    return not pid_alive(pid)


def _group_gone(pgid: int) -> bool:
    """No live (non-zombie) process left in process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


class AppProcess:
    def __init__(self, project: Path, log: Path, engine_url: str | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "INNGEST_DEV": "1",
               "INNGEST_BASE_URL": engine_url or f"http://127.0.0.1:{free_port()}"}
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, "-m", "agentcmd.server", "--port", str(self.port),
                                      "--project", str(project)], stdout=self._out, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._out.close()


@pytest.fixture
def app_process(project: Path, tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    started: list[AppProcess] = []

    def start(engine_url: str | None = None, port: int | None = None) -> AppProcess:
        app = AppProcess(project, tmp_path / f"app-{len(started)}.log", engine_url, port)
        started.append(app)
        wait_for(lambda: httpx.get(f"{app.url}/health", timeout=2).status_code == 200, 30,
                 "the app server to answer /health", app.output)
        return app

    yield start
    for app in started:
        app.close()


def _execute(url: str, workflow_id: str, run_id: str) -> httpx.Response:
    """One SDK call as an engine makes it: run the workflow body from the start (no memos)."""
    event = {"name": f"agentcmd/workflow.{workflow_id}", "data": {}, "id": uuid.uuid4().hex,
             "ts": int(time.time() * 1000), "user": {}}
    body = {"event": event, "events": [event], "steps": {},
            "ctx": {"run_id": run_id, "attempt": 0, "max_attempts": 3, "disable_immediate_execution": False,
                    "use_api": False, "stack": {"stack": [], "current": 0}}, "use_api": False, "version": 2}
    return httpx.post(f"{url}/api/workflows/inngest", params={"fnId": f"agentcmd-{workflow_id}", "stepId": "step"},
                      content=json.dumps(body), headers={"content-type": "application/json"}, timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_step_group_answers_503_interrupted_and_exits_0(
        write_workflow: Any, project: Path, app_process: Any, agentcmd_home: Path, sig: int) -> None:
    write_workflow("sleeper.py", SLEEPER)
    app = app_process()
    run_id = f"run-{uuid.uuid4().hex[:12]}"
    answer: dict[str, Any] = {}
    call = threading.Thread(target=lambda: answer.update(resp=_execute(app.url, "sleeper", run_id)))
    call.start()
    wait_for(lambda: (project / "child.pid").exists() and (project / "child.pid").read_text().strip()
             and (project / "shell.pid").read_text().strip(), 20, "the step's command to start", app.output)
    shell, child = int((project / "shell.pid").read_text()), int((project / "child.pid").read_text())
    assert os.getpgid(shell) == shell and os.getpgid(child) == shell  # the step runs in its own group

    started = time.monotonic()
    os.kill(app.proc.pid, sig)
    call.join(15)
    resp = answer["resp"]
    assert resp.status_code == 503, resp.text
    assert resp.headers["x-agentcmd-interrupted"] == "app shutting down"
    assert resp.json() == {"error": "app shutting down", "code": "interrupted"}
    assert app.proc.wait(15) == 0, app.output()
    assert time.monotonic() - started < 8
    assert _gone(shell) and _gone(child) and _group_gone(shell)
    assert "Cancel 1 running task" not in app.output()

    records = (agentcmd_home / "data" / "runs" / run_id / "steps.jsonl").read_text().splitlines()
    last = json.loads(records[-1])
    assert (last["step_id"], last["status"], last["phase"]) == ("work/long", "interrupted", "work")
    assert last["ended_at"] and json.loads(records[0])["status"] == "running"


def test_a_command_ignoring_sigterm_is_killed_and_the_app_still_exits_0(
        write_workflow: Any, project: Path, app_process: Any) -> None:
    write_workflow("stubborn.py", SLEEPER.replace('"sleep 30 & echo', '"trap \'\' TERM; sleep 30 & echo')
                   .replace("sleeper", "stubborn"))
    app = app_process()
    answer: dict[str, Any] = {}
    call = threading.Thread(target=lambda: answer.update(resp=_execute(app.url, "stubborn", "run-stubborn")))
    call.start()
    wait_for(lambda: (project / "shell.pid").exists() and (project / "shell.pid").read_text().strip(), 20,
             "the step's command to start", app.output)
    shell = int((project / "shell.pid").read_text())
    os.kill(app.proc.pid, signal.SIGTERM)
    call.join(15)
    assert answer["resp"].status_code == 503
    assert app.proc.wait(15) == 0, app.output()
    assert _group_gone(shell)


def test_after_a_crash_the_step_that_was_running_shows_interrupted_with_how_long_it_ran(
        write_workflow: Any, project: Path, app_process: Any) -> None:
    from tests.workflows.fakeengine import FakeEngine, ServerThread

    write_workflow("sleeper.py", SLEEPER)
    engine = FakeEngine()
    engine_server = ServerThread(engine.app).start()
    try:
        app = app_process(engine_server.url)
        run_id = "run-crashed"
        engine.runs[run_id] = {"run_id": run_id, "function_id": "agentcmd-sleeper", "function_slug": "agentcmd-sleeper",
                               "app_id": "agentcmd", "event_id": "e1", "status": "Running", "output": None,
                               "error": None, "run_started_at": None, "ended_at": None, "attempt": 0}
        call = threading.Thread(target=_swallow, args=(lambda: _execute(app.url, "sleeper", run_id),), daemon=True)
        call.start()
        wait_for(lambda: (project / "shell.pid").exists() and (project / "shell.pid").read_text().strip(), 20,
                 "the step's command to start", app.output)
        shell = int((project / "shell.pid").read_text())
        running = httpx.get(f"{app.url}/api/runs/{run_id}", timeout=10).json()["data"]
        assert [(x["id"], x["status"], x["pid"]) for x in running["steps"]] == [("long", "Running", shell)]
        os.kill(app.proc.pid, signal.SIGKILL)  # a crash: no time to record anything
        app.proc.wait(10)
        os.killpg(shell, signal.SIGKILL)  # what a crash leaves behind is not the subject here

        again = app_process(engine_server.url, app.port)
        run = httpx.get(f"{again.url}/api/runs/{run_id}", timeout=10).json()["data"]
        [step] = run["steps"]
        assert (step["id"], step["phase"], step["status"], step["pid"]) == ("long", "work", "Interrupted", None)
        assert isinstance(step["elapsed_ms"], int) and run["phase"] == "work"
        assert "runs again from its start" in step["error"]
        page = httpx.get(f"{again.url}/runs/{run_id}", timeout=10).text
        assert "status-interrupted" in page and "Not reached" not in page
    finally:
        engine_server.stop()


def _swallow(fn: Callable[[], Any]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the app is killed mid-call
        fn()


def test_an_sdk_call_after_shutdown_began_is_answered_interrupted() -> None:
    """The middleware on its own: once the flag is set, even a fresh SDK call is not run."""
    import asyncio

    from agentcmd.server.shutdown import InterruptMiddleware, Shutdown

    ran: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        ran.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    flag = Shutdown()
    flag.started = True
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    mw = InterruptMiddleware(app, shutdown=flag)
    asyncio.run(mw({"type": "http", "method": "POST", "path": "/api/workflows/inngest"}, receive, send))
    assert sent[0]["status"] == 503 and not ran
    sent.clear()
    asyncio.run(mw({"type": "http", "method": "GET", "path": "/api/runs"}, receive, send))
    assert sent[0]["status"] == 200 and ran == ["/api/runs"]
