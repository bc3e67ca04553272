"""``agentcmd backup`` of a running ``agentcmd start``, restored into a fresh home: its workflow runs carry on.

The operator's path (docs/running.md, "Backup and restore"): while
``agentcmd start`` runs a workflow that waits for an event and another that
sleeps, ``agentcmd backup`` copies the engine database; that agentcmd is
stopped, and on a new home (another machine, say) ``agentcmd restore``
puts the backup in place and ``agentcmd start`` runs on it. The waiting run
completes on its event there, the sleeper wakes, and the step completed
before the backup is not run again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.keys import app_headers
from tests.harness.processes import Spawned, free_port, run_cli
from tests.polling import wait_for
from tests.supervisor.conftest import wait_exit, wait_output

SpawnFn = Callable[..., Spawned]
READY = "ready in "

WORKFLOWS = """
from agentcmd import define_workflow


def mark(name):
    with open({marks!r}, "a") as fh:
        fh.write(name + "\\n")
    return name


@define_workflow(id="held", retries=0)
async def held(ctx, step):
    await step.run("first", mark, "first")
    got = await step.wait_for_event("go", event="ops/go", timeout="1h")
    await step.run("last", mark, "last")
    return got["data"]["who"]


@define_workflow(id="dozer", retries=0)
async def dozer(ctx, step):
    await step.run("doze", mark, "doze")
    await step.sleep("nap", "4s")
    return "rested"
"""


def _api(port: int, home: Path, method: str, path: str, **kw: Any) -> Any:
    resp = httpx.request(method, f"http://127.0.0.1:{port}/api{path}", timeout=15, headers=app_headers(str(home)),
                         **kw)
    assert resp.status_code < 300, resp.text
    return resp.json()["data"]


def _rows(db: Path, sql: str, *args: Any) -> list[Any]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_a_backup_of_a_running_start_restored_into_a_fresh_home_carries_its_runs_on(
        spawn: SpawnFn, project: Path, tmp_path: Path, agentcmd_home: Path) -> None:
    marks = tmp_path / "marks.txt"
    (project / ".agentcmd" / "workflows" / "ops.py").write_text(WORKFLOWS.format(marks=str(marks)))
    port, engine_port = free_port(), free_port()
    args = ("start", "--port", str(port), "--engine-port", str(engine_port), "--project", str(project))
    first = spawn(*args)
    wait_output(first, READY, timeout=30)
    held = _api(port, agentcmd_home, "POST", "/workflows/held/runs", json={})["run_id"]
    dozer = _api(port, agentcmd_home, "POST", "/workflows/dozer/runs", json={})["run_id"]
    db = agentcmd_home / "data" / "engine" / "engine.db"
    wait_for(lambda: _rows(db, "SELECT 1 FROM pauses WHERE run_id = ?", held), 20, "the run to wait", first.output)
    wait_for(lambda: _rows(db, "SELECT 1 FROM steps WHERE run_id = ? AND name = 'doze'", dozer), 20,
             "the sleeper to sleep", first.output)

    made = run_cli("backup", str(tmp_path / "ops.db"))
    assert made.returncode == 0, made.stderr
    assert "while an engine was running" in made.stdout and "2 runs (2 in flight)" in made.stdout, made.stdout
    os.kill(first.proc.pid, signal.SIGINT)
    assert wait_exit(first, timeout=30) == 0, first.output()

    home = tmp_path / "new-home"
    restored = run_cli("restore", str(tmp_path / "ops.db"), env={"AGENTCMD_HOME": str(home)})
    assert restored.returncode == 0, restored.stderr
    assert f"there was no database at {home / 'data' / 'engine' / 'engine.db'}" in restored.stdout
    second = spawn(*args, env={"AGENTCMD_HOME": str(home)})
    wait_output(second, READY, timeout=30)
    _api(port, home, "POST", "/events", json={"name": "ops/go", "data": {"who": "the operator"}})

    def ended(run_id: str) -> Any:
        run = _api(port, home, "GET", f"/runs/{run_id}")
        return run if run["status"] in ("Completed", "Failed", "Cancelled") else None

    assert wait_for(lambda: ended(held), 30, "the waiting run to end", second.output)["output"] == "the operator"
    assert wait_for(lambda: ended(dozer), 30, "the sleeper to end", second.output)["output"] == "rested"
    assert sorted(marks.read_text().split()) == ["doze", "first", "last"]      # nothing ran twice
