"""An app server in worker mode connect never syncs itself: runs start only once a worker serves the workflow."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.engine import EngineProc
from tests.harness.processes import Child, clean_env, free_port, run_cli
from tests.polling import wait_for
from tests.workers.workerharness import Calls, WorkerProc, ready_workers

from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

pytestmark = pytest.mark.slow   # real engines and worker processes


def test_the_app_server_defers_to_connect_workers(connect_engine: Callable[..., EngineProc],
                                                   workers: Callable[..., WorkerProc], project: Path, calls: Calls,
                                                   tmp_path: Path,
                                                   wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    engine = connect_engine("dev")
    port = free_port()
    env = inngest_env(Mode.DEV, engine.url, base=clean_env(tmp_path / "app-home"))
    env["AGENTCMD_WORKER_MODE"] = "connect"
    app = Child([sys.executable, "-m", "agentcmd.server", "--port", str(port), "--project", str(project)], env,
                tmp_path / "app.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(url + "/health", timeout=2).status_code == 200, 30, "the app server",
                 app.output, children=[app])
        refused = httpx.post(url + "/api/workflows/record/runs", json={"input": {"log": str(calls.path)}},
                             timeout=30)
        assert refused.status_code == 503 and refused.json()["code"] == "no_worker", refused.text
        assert "agentcmd worker" in refused.json()["hint"]
        reload = httpx.post(url + "/api/reload", timeout=30).json()["data"]
        assert reload["synced"] is False and reload["sync_error"] is None and reload["worker_mode"] == "connect"
        said = run_cli("workflows", "reload", env={"PORT": str(port)})
        assert said.returncode == 0, said.stderr
        assert "connect workers serve the workflows" in said.stdout and "SIGHUP" in said.stdout
        assert httpx.get(engine.url + "/v1/apps", timeout=5).json()["data"] == []   # never synced over HTTP

        worker = workers(engine, "a")
        ready_workers(engine, 1, [worker])
        started = httpx.post(url + "/api/workflows/record/runs", json={"input": {"log": str(calls.path)}},
                             timeout=30)
        assert started.status_code == 202, started.text
        run_id = started.json()["data"]["run_id"]
        wait_for_run_status(engine, run_id, "Completed", timeout=60)
        assert {c["pid"] for c in calls.all(run_id)} == {worker.pid}
        assert [a["url"] for a in httpx.get(engine.url + "/v1/apps", timeout=5).json()["data"]] \
            == ["connect://agentcmd"]
    finally:
        app.stop()
