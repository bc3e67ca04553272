"""A bulk cancel stops the step commands of every run it cancels: real engine, app server and CLI.

Two runs of a workflow sit in a long ``step.cli``; ``agentcmd functions
cancel`` (``POST /v1/cancellations``) cancels both on the engine, and the
app, which watches its runs' status while a command runs
(``workflows/steps.py``), stops each command's process group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.e2e import CANCELLABLE, alive, cli, dev_pair
from tests.polling import wait_for

pytestmark = pytest.mark.slow


def test_a_bulk_cancel_stops_the_running_command_of_each_cancelled_run(
        project: Path, write_workflow: Any, procs: Any) -> None:
    write_workflow("cancellable.py", CANCELLABLE)
    pair = dev_pair(procs, project)
    app_url, engine_url, engine, base = pair.app_url, pair.engine_url, pair.engine, pair.base
    slug = next(f["slug"] for f in httpx.get(f"{engine_url}/v1/functions", timeout=5).json()["data"]
                if f["slug"].endswith("-cancellable"))

    children: dict[str, int] = {}
    for _ in range(2):
        run_id = httpx.post(f"{app_url}/api/workflows/cancellable/runs", json={}, timeout=30).json()["data"]["run_id"]
        pid_file = project / f"{run_id}.pid"
        wait_for(lambda f=pid_file: f.exists() and f.read_text().strip(), 30, "the long command", engine.output)
        children[run_id] = int(pid_file.read_text())

    out = cli("functions", "cancel", slug, env={**base, "AGENTCMD_ENGINE_URL": engine_url})
    assert out.returncode == 0, out.stderr
    assert f"{slug}: 2 run(s) cancelled" in out.stdout and set(children) <= set(out.stdout.split())
    for run_id, child in children.items():
        wait_for(lambda c=child: not alive(c), 15, f"the command of {run_id} stopped by the bulk cancel")
        run = wait_for(lambda r=run_id: (d := httpx.get(f"{app_url}/api/runs/{r}", timeout=10).json()["data"])
                       ["status"] == "Cancelled" and d["steps"] and d["steps"][-1]["status"] == "Cancelled" and d,
                       15, f"run {run_id} and its step cancelled", engine.output)
        assert [(s["id"], s["status"]) for s in run["steps"]] == [("quick", "Completed"), ("long", "Cancelled")]
    assert not list(project.glob("*.never"))
