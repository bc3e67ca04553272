"""A bulk cancel stops the step commands of every run it cancels: real engine, app server and CLI.

Two runs of a workflow sit in a long ``step.cli``; ``agentcmd functions
cancel`` (``POST /v1/cancellations``) cancels both on the engine, and the
app, which watches its runs' status while a command runs
(``workflows/steps.py``), stops each command's process group.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.processes import free_ports
from tests.polling import wait_for
from tests.workflows.test_e2e import CANCELLABLE, _alive, _cli, _synced, procs

from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

pytestmark = pytest.mark.slow
__all__ = ["procs"]   # the fixture, shared with test_e2e.py


def test_a_bulk_cancel_stops_the_running_command_of_each_cancelled_run(
        project: Path, write_workflow: Any, procs: Any) -> None:
    write_workflow("cancellable.py", CANCELLABLE)
    app_port, engine_port = free_ports(2)
    app_url, engine_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{engine_port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    procs([sys.executable, "-m", "agentcmd.server", "--port", str(app_port), "--project", str(project)],
          inngest_env(Mode.DEV, engine_url, base=base))
    engine = procs([sys.executable, "-m", "agentcmd", "engine", "dev", "--host", "127.0.0.1", "--port",
                    str(engine_port), "--no-discovery", "--poll-interval", "0.2", "-u",
                    f"{app_url}/api/workflows/inngest"], base)
    wait_for(lambda: _synced(engine_url, None, app_url), 60, "the engine to sync the app", engine.output)
    slug = next(f["slug"] for f in httpx.get(f"{engine_url}/v1/functions", timeout=5).json()["data"]
                if f["slug"].endswith("-cancellable"))

    children: dict[str, int] = {}
    for _ in range(2):
        run_id = httpx.post(f"{app_url}/api/workflows/cancellable/runs", json={}, timeout=30).json()["data"]["run_id"]
        pid_file = project / f"{run_id}.pid"
        wait_for(lambda f=pid_file: f.exists() and f.read_text().strip(), 30, "the long command", engine.output)
        children[run_id] = int(pid_file.read_text())

    out = _cli("functions", "cancel", slug, env={**base, "AGENTCMD_ENGINE_URL": engine_url})
    assert out.returncode == 0, out.stderr
    assert f"{slug}: 2 run(s) cancelled" in out.stdout and set(children) <= set(out.stdout.split())
    for run_id, child in children.items():
        wait_for(lambda c=child: not _alive(c), 15, f"the command of {run_id} stopped by the bulk cancel")
        run = wait_for(lambda r=run_id: (d := httpx.get(f"{app_url}/api/runs/{r}", timeout=10).json()["data"])
                       ["status"] == "Cancelled" and d["steps"] and d["steps"][-1]["status"] == "Cancelled" and d,
                       15, f"run {run_id} and its step cancelled", engine.output)
        assert [(s["id"], s["status"]) for s in run["steps"]] == [("quick", "Completed"), ("long", "Cancelled")]
    assert not list(project.glob("*.never"))
