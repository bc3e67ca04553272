"""A restart in the middle of a wait for an answer, in both modes.

* production (``agentcmd start``: the SQLite engine and the app server):
  stop the supervisor while a run waits for an approval, start it again,
  approve from the CLI: the run goes on and completes. Nothing waited in a
  process meanwhile: the wait lives in the engine's database, the question
  in the data directory.
* dev, the app server restarted under a running engine (``agentcmd engine
  dev``, or a crash of the app): the wait is in the engine, the question
  record on disk; approve after the restart and the run completes.
* dev, ``agentcmd dev`` restarted as a whole: its engine keeps runs in
  memory, so the waiting run is gone (docs/running.md); its question is
  still listed but no longer waits, and an answer is refused (409
  ``not_waiting``) saying why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.e2e import cli, supervisor
from tests.harness.processes import Child
from tests.polling import wait_for
from tests.workflows.test_questions_e2e import GATE, start_dev_stack

pytestmark = pytest.mark.slow


def _waiting(app_url: str, run_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = httpx.get(f"{app_url}/api/runs/{run_id}/questions", timeout=10, headers=headers)
    return [q for q in resp.json()["data"] if q["waiting"]] if resp.status_code == 200 else []


def _ended(app_url: str, run_id: str, headers: dict[str, str]) -> dict[str, Any] | None:
    run: dict[str, Any] = httpx.get(f"{app_url}/api/runs/{run_id}", timeout=10, headers=headers).json()["data"]
    return run if run["status"] in ("Completed", "Failed", "Cancelled") else None


def test_production_a_restart_of_agentcmd_start_mid_wait_then_approve_and_the_run_goes_on(
        project: Path, write_workflow: Any, procs: Any) -> None:
    write_workflow("gate.py", GATE)
    prod = supervisor(project)
    app_url, env, bearer = prod.app_url, prod.env, prod.bearer
    sup = prod.start(procs)
    run_id = httpx.post(f"{app_url}/api/workflows/gate/runs", json={"input": {"what": "prod"}}, timeout=30,
                        headers=bearer).json()["data"]["run_id"]
    wait_for(lambda: _waiting(app_url, run_id, bearer), 60, "the run to ask", sup.output)

    prod.stop(sup)
    sup = prod.start(procs, "the engine to come back")
    [q] = _waiting(app_url, run_id, bearer)
    assert q["question"] == "check/deploy" and q["message"] == "Deploy prod?"

    out = cli("runs", "approve", run_id, "--comment", "after the restart", env=env)
    assert out.returncode == 0, out.stderr + sup.output()[-3000:]
    run = wait_for(lambda: _ended(app_url, run_id, bearer), 60, "the run to end", sup.output)
    assert run["status"] == "Completed", run
    assert (run["output"]["decision"], run["output"]["by"], run["output"]["comment"], run["output"]["after"]) == (
        "approved", "cli", "after the restart", "went on")


def test_dev_an_app_server_restart_mid_wait_then_approve_and_the_run_goes_on(tmp_path: Path) -> None:
    stack = start_dev_stack(tmp_path, {"gate.py": GATE})
    try:
        run_id = stack.start("gate")
        stack.waiting(run_id)
        app = stack.children[1]
        app.stop()
        stack.children[1] = Child([str(a) for a in app.proc.args], stack.app_env, tmp_path / "app-again.log")
        wait_for(lambda: httpx.get(f"{stack.app_url}/health", timeout=5).status_code == 200, 60,
                 "the app server to come back", stack.logs, children=stack.children)
        [q] = stack.waiting(run_id)
        assert q["question"] == "check/deploy"
        assert stack.approve(run_id).status_code == 200
        run = stack.end(run_id)
        assert (run["status"], run["output"]["decision"]) == ("Completed", "approved")
    finally:
        for child in reversed(stack.children):
            child.stop()


def test_dev_a_restart_of_agentcmd_dev_forgets_the_waiting_run_and_an_answer_says_so(
        project: Path, write_workflow: Any, procs: Any) -> None:
    write_workflow("gate.py", GATE)
    dev = supervisor(project, "dev")
    app_url = dev.app_url
    sup = dev.start(procs, "the dev engine to sync the app")
    run_id = httpx.post(f"{app_url}/api/workflows/gate/runs", json={}, timeout=30).json()["data"]["run_id"]
    wait_for(lambda: _waiting(app_url, run_id, {}), 60, "the run to ask", sup.output)
    dev.stop(sup)

    sup = dev.start(procs, "the dev engine to come back")
    [q] = httpx.get(f"{app_url}/api/runs/{run_id}/questions", timeout=10).json()["data"]
    assert q["question"] == "check/deploy" and q["waiting"] is False
    resp = httpx.post(f"{app_url}/api/runs/{run_id}/approve", json={}, timeout=30)
    assert resp.status_code == 409 and resp.json()["code"] == "not_waiting", resp.text
    assert "restarting 'agentcmd dev' forgets them" in resp.json()["error"]
