"""The app's step records: the running step is visible (API, pages, CLI), an interrupted one says so,
and ``--wait`` off a terminal prints one plain line per step start and end."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from tests.workflows.fakeengine import ServerThread

from agentcmd.cli.stepfeed import StepFeed

PHASED = '''
from agentcmd import define_workflow

@define_workflow(id="phased", phases=["plan", "build"], retries=0)
async def phased(ctx, step):
    with step.phase("plan"):
        await step.cli("quick", "true")
    with step.phase("build"):
        await step.cli("long", "echo $$ > long.pid; while [ ! -f release ]; do sleep 0.05; done")
    return "done"
'''


def _step(run: dict[str, Any], step_id: str) -> dict[str, Any] | None:
    return next((s for s in run["steps"] if s["id"] == step_id), None)


def _run(s: Any, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = s.app.get(f"/api/runs/{run_id}").json()["data"]
    return data


def test_the_running_step_is_shown_running_with_its_phase_pid_and_elapsed_time(
        stack: Any, write_workflow: Any, project: Path, wait_until: Any, cli: Any) -> None:
    write_workflow("phased.py", PHASED)
    s = stack()
    run_id = s.app.post("/api/workflows/phased/runs", json={}).json()["data"]["run_id"]
    assert run_id
    wait_until(lambda: (project / "long.pid").exists() and (project / "long.pid").read_text().strip(), 20,
               "the long step's command to start")
    run = wait_until(lambda: (r := _run(s, run_id)) and (_step(r, "long") or {}).get("pid") and r, 10,
                     "the long step's record with its pid")
    long = _step(run, "long")
    assert long is not None
    assert run["status"] == "Running" and run["phase"] == "build"  # not the last completed step's "plan"
    assert [(x["phase"], x["id"], x["status"]) for x in run["steps"]] == [("plan", "quick", "Completed"),
                                                                         ("build", "long", "Running")]
    assert long["step_id"] == "build/long" and long["pid"] == int((project / "long.pid").read_text())
    assert long["started_at"] and long["ended_at"] is None and isinstance(long["elapsed_ms"], int)
    later = wait_until(lambda: (x := _step(_run(s, run_id), "long")) and x["elapsed_ms"] > long["elapsed_ms"] and x,
                       10, "the elapsed time to grow")
    assert later["status"] == "Running"

    page = s.app.get(f"/runs/{run_id}").text
    assert 'data-step="long"' in page and "status-running" in page and "so far" in page
    assert f"pid {long['pid']}" in page and 'data-phase="build"' in page and "phase-current" in page
    listed = s.app.get("/api/runs", params={"workflow": "phased"}).json()["data"]
    assert [r["phase"] for r in listed] == ["build"]

    shown = cli("runs", "show", run_id, env={"PORT": s.app.url.rsplit(":", 1)[1], "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    line = next(li for li in shown.stdout.splitlines() if " long " in li)
    assert "Running" in line and "so far" in line and f"pid {long['pid']}" in line
    assert "phase: build" in shown.stdout

    (project / "release").touch()
    done = wait_until(lambda: (r := _run(s, run_id))["status"] == "Completed" and r, 20, "the run to complete")
    finished = _step(done, "long")
    assert finished is not None and finished["status"] == "Completed" and finished["pid"] is None
    assert finished["ended_at"] and isinstance(finished["elapsed_ms"], int)


def test_a_step_left_running_by_an_earlier_app_server_shows_as_interrupted(
        stack: Any, write_workflow: Any, project: Path, wait_until: Any) -> None:
    from agentcmd.server.app import create_app

    write_workflow("phased.py", PHASED)
    s = stack()
    run_id = s.app.post("/api/workflows/phased/runs", json={}).json()["data"]["run_id"]
    wait_until(lambda: (project / "long.pid").exists(), 20, "the long step's command to start")
    wait_until(lambda: (_step(_run(s, run_id), "long") or {}).get("status") == "Running", 10, "long running")
    # Another app server on the same data directory (as after a crash and restart) reads the record.
    restarted = ServerThread(create_app(project, entry_points=False)).start()
    try:
        run = httpx.get(f"{restarted.url}/api/runs/{run_id}", timeout=10).json()["data"]
        long = _step(run, "long")
        assert long is not None and long["status"] == "Interrupted" and long["pid"] is None
        assert isinstance(long["elapsed_ms"], int)  # how long it ran, up to the last heartbeat
        assert "runs again from its start" in long["error"]
        page = httpx.get(f"{restarted.url}/runs/{run_id}", timeout=10).text
        assert "status-interrupted" in page
    finally:
        (project / "release").touch()
        restarted.stop()
    wait_until(lambda: _run(s, run_id)["status"] == "Completed", 20, "the run to complete")


def test_the_step_feed_prints_one_line_per_start_and_end() -> None:
    feed = StepFeed()
    step = {"step_id": "build/test", "id": "test", "phase": "build", "status": "Running", "elapsed_ms": 10}
    assert feed.update({"steps": [step]}) == ["step started   build/test  phase=build"]
    assert feed.update({"steps": [{**step, "elapsed_ms": 900}]}) == []
    assert feed.update({"steps": [{**step, "status": "Completed", "elapsed_ms": 3210}]}) == [
        "step completed build/test  3.2s"]
    fast = {"step_id": "lint", "id": "lint", "phase": None, "status": "Failed", "elapsed_ms": 400,
            "error": {"name": "CommandFailedError", "message": "`ruff` exited with code 1:\nbad"}}
    assert feed.update({"steps": [{**step, "status": "Completed", "elapsed_ms": 3210}, fast]}) == [
        "step started   lint  phase=-",
        "step failed    lint  0.4s  error=CommandFailedError: `ruff` exited with code 1: bad"]
    again = {**step, "status": "Interrupted", "elapsed_ms": 5000, "error": "the app server stopped"}
    assert feed.update({"steps": [again]}) == ["step interrupted build/test  5.0s  error=the app server stopped"]
    assert feed.update({"steps": [{**step, "status": "Running"}]}) == ["step started   build/test  phase=build"]


def test_wait_off_a_terminal_prints_plain_step_lines_and_keeps_stdout_for_the_output(
        stack: Any, write_workflow: Any, cli: Any) -> None:
    write_workflow("phased.py", PHASED.replace("while [ ! -f release ]; do sleep 0.05; done", "sleep 0.5"))
    s = stack()
    out = cli("workflows", "run", "phased", "--wait", "--timeout", "60", env={"PORT": s.app.url.rsplit(":", 1)[1]})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == "done"
    lines = [li for li in out.stderr.splitlines() if li.startswith("step ")]
    assert lines[0] == "step started   plan/quick  phase=plan"
    assert lines[1].startswith("step completed plan/quick  ") and lines[1].endswith("s")
    assert lines[2] == "step started   build/long  phase=build"
    assert lines[3].startswith("step completed build/long  ")
    assert float(lines[3].rsplit(" ", 1)[1].rstrip("s")) >= 0.4
    assert len(lines) == 4


def test_records_fold_to_the_last_line_per_step_and_skip_a_torn_line(tmp_path: Path) -> None:
    from agentcmd.workflows import steprecords

    rec = steprecords.StepRecorder(tmp_path, "run-1", "build/test", "build", 0, "boot-a").record
    steprecords.append_sync(tmp_path, rec)
    steprecords.append_sync(tmp_path, {**rec, "pid": 42})
    with steprecords.records_file(tmp_path, "run-1").open("a") as f:
        f.write('{"run_id": "run-1", "step_id": "build/te')  # a crash mid-write
    [only] = steprecords.read_sync(tmp_path, "run-1")
    assert only["pid"] == 42 and only["status"] == "running"
    steprecords.append_sync(tmp_path, {**rec, "pid": 43})  # after the restart: not glued to the torn line
    [only] = steprecords.read_sync(tmp_path, "run-1")
    assert only["pid"] == 43 and only["status"] == "running"
    assert steprecords.effective(only, "boot-a")["status"] == "running"
    later = steprecords.effective(only, "boot-b")
    assert later["status"] == "interrupted" and later["pid"] is None
    os.utime(steprecords.records_file(tmp_path, "run-1"),
             (time.time(), steprecords.iso_ms(rec["started_at"]) / 1000 + 5))  # last heartbeat: 5 s in
    ran = steprecords.effective(steprecords.read_sync(tmp_path, "run-1")[0], "boot-b")
    assert ran["status"] == "interrupted" and 4900 <= ran["elapsed_ms"] <= 5100
    assert oct(steprecords.records_file(tmp_path, "run-1").stat().st_mode & 0o777) == "0o600"
    assert steprecords.read_sync(tmp_path, "../etc") == []
