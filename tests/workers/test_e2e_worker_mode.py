"""``agentcmd dev|start --worker-mode connect``: the supervisor's own worker serves the workflows.

The app server still lists and starts workflows (its API), the engine knows
the app only through the worker's connection (``connect://agentcmd``, never
the app's HTTP URL), a reload reaches the worker, and a stop leaves no
process behind.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.processes import Spawned, free_port, free_ports, pid_alive
from tests.polling import wait_for
from tests.workers.workerharness import Calls

pytestmark = pytest.mark.slow   # real engines and worker processes

READY = "\nready in "   # a line of its own: "Address already in use" contains "ready in "
NEW_WORKFLOW = '''
from agentcmd import define_workflow


@define_workflow(id="added", retries=0)
async def added(ctx, step):
    return await step.run("hi", lambda: "added")
'''


def child_pids(output: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+) started \(pid (\d+)\)", output)}


@pytest.mark.parametrize("command", ["dev", "start"])
def test_connect_mode_serves_the_workflows_from_the_worker(
        command: str, spawn: Callable[..., Spawned], project: Path, calls: Calls, tmp_path: Path) -> None:
    app_port, engine_port = free_ports(2)
    sup = spawn(command, "--worker-mode", "connect", "--project", str(project), "--port", str(app_port),
                "--engine-port", str(engine_port), "--log-format", "plain",
                env={"AGENTCMD_ENGINE_CONNECT_PORT": str(free_port())})
    wait_for(lambda: READY in sup.output(), 60, "the supervisor to be ready", sup.output, children=[sup])
    out = sup.output()
    assert "the worker connected to the engine" in out and "synced the app" not in out
    pids = child_pids(out)
    assert set(pids) == {"engine", "app", "worker"}
    app, engine = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{engine_port}"
    key = None
    if command == "start":
        from agentcmd.config import load_settings
        from agentcmd.signing import hash_signing_key

        key = load_settings().secret("signing_key")
    headers = {"Authorization": f"Bearer {hash_signing_key(key)}"} if key else {}

    # The engine knows the app through the worker only.
    apps = httpx.get(engine + "/v1/apps", headers=headers, timeout=5).json()["data"]
    assert [(a["id"], a["url"]) for a in apps] == [("agentcmd", "connect://agentcmd")]
    assert [w["status"] for w in apps[0]["workers"]] == ["ready"]
    # The app server lists and starts workflows as in http mode; the worker runs them.
    assert [w["id"] for w in httpx.get(app + "/api/workflows", headers=headers, timeout=5).json()["data"]] \
        == ["record", "shell", "slow"]
    started = httpx.post(app + "/api/workflows/record/runs", json={"input": {"log": str(calls.path)}},
                         headers=headers, timeout=30)
    assert started.status_code == 202, started.text
    run_id = started.json()["data"]["run_id"]
    assert started.json()["data"]["resynced"] is False
    wait_for(lambda: httpx.get(f"{engine}/v1/runs/{run_id}", headers=headers, timeout=5).json()["data"]["status"]
             == "Completed", 60, "the run to complete", sup.output, children=[sup])
    assert {c["pid"] for c in calls.all(run_id)} == {pids["worker"]}
    view = httpx.get(f"{app}/api/runs/{run_id}", headers=headers, timeout=5).json()["data"]
    assert view["status"] == "Completed"

    if command == "dev":   # a new workflow file: the app lists it and the worker serves it
        (project / ".agentcmd" / "workflows" / "added.py").write_text(NEW_WORKFLOW)
        wait_for(lambda: "reloaded: serving 4 workflow(s)" in sup.output(), 30, "the worker to reload",
                 sup.output, children=[sup])
        assert "reloaded the app server's workflows: added, record, shell, slow (added: added); the worker " \
               "reloads them next" in sup.output()
        added = httpx.post(app + "/api/workflows/added/runs", json={}, timeout=30)
        assert added.status_code == 202, added.text
        added_id = added.json()["data"]["run_id"]
        wait_for(lambda: httpx.get(f"{engine}/v1/runs/{added_id}", timeout=5).json()["data"]["status"]
                 == "Completed", 60, "the added workflow's run", sup.output, children=[sup])
        assert [a["url"] for a in httpx.get(engine + "/v1/apps", timeout=5).json()["data"]] == ["connect://agentcmd"]

    os.kill(sup.proc.pid, signal.SIGINT)
    assert sup.proc.wait(30) == 0
    wait_for(lambda: not any(pid_alive(p) for p in pids.values()), 10, "every child to exit", sup.output)
    assert "stopping worker" in sup.output()


def test_connect_mode_with_no_workflows_yet_starts_and_waits(spawn: Callable[..., Spawned], tmp_path: Path) -> None:
    empty = tmp_path / "empty-project"
    (empty / ".agentcmd" / "workflows").mkdir(parents=True)
    app_port, engine_port = free_ports(2)
    sup = spawn("dev", "--worker-mode", "connect", "--project", str(empty), "--port", str(app_port),
                "--engine-port", str(engine_port), "--log-format", "plain",
                env={"AGENTCMD_ENGINE_CONNECT_PORT": str(free_port())})
    wait_for(lambda: READY in sup.output(), 60, "the supervisor to be ready", sup.output, children=[sup])
    assert "the worker connects once a workflow file is added" in sup.output()
    (empty / ".agentcmd" / "workflows" / "added.py").write_text(NEW_WORKFLOW)
    wait_for(lambda: "reloaded: serving 1 workflow(s): added" in sup.output(), 30, "the worker to connect",
             sup.output, children=[sup])
    apps: list[dict[str, Any]] = httpx.get(f"http://127.0.0.1:{engine_port}/v1/apps", timeout=5).json()["data"]
    assert [a["url"] for a in apps] == ["connect://agentcmd"]
