"""A run interrupted by stopping ``agentcmd start`` mid-step resumes after the restart.

The workflow has ``retries=0``, a completed step (it appends to a marker
file) and then ``step.cli("long", "... sleep N")``. The supervisor is
stopped while "long" runs, by SIGINT (the graceful path, docs/running.md: the
engine records the call interrupted and the app stops the step) or by
SIGKILL of the whole process tree (nothing graceful at all). After
``agentcmd start`` again on the same home:

- the run completes: with retries=0 an interruption counted as a failed
  attempt would have failed it, so no retry was used;
- the completed step did not run again (one line in its marker file);
- "long" ran again from its start (at least once: two starts recorded).

The graceful path relies on the engine's interruption handling and the
app's shutdown (docs/engine.md, interrupted calls; docs/running.md, shutdown).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.harness.keys import app_headers
from tests.harness.processes import Spawned, free_port, pid_alive
from tests.polling import wait_for
from tests.supervisor.conftest import child_pids, wait_exit, wait_output

SpawnFn = Callable[..., Spawned]
READY = "ready in "
LONG_SECONDS = 4

RESUME_WORKFLOW = """
from pathlib import Path

from agentcmd import define_workflow


def mark():
    with open({first!r}, "a") as fh:
        fh.write("ran\\n")
    return "first done"


@define_workflow(id="resume", retries=0)
async def resume(ctx, step):
    await step.run("first", mark)
    await step.cli("long", "echo started >> {long_marker}; sleep {seconds}")
    return "done"
"""


def descendants(root: int) -> list[int]:
    """Every process under ``root`` (by parent pid), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def run_status(port: int, run_id: str) -> str:
    resp = httpx.get(f"http://127.0.0.1:{port}/api/runs/{run_id}", timeout=10, headers=app_headers())
    return str(resp.json()["data"]["status"]) if resp.status_code == 200 else f"HTTP {resp.status_code}"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_a_run_stopped_mid_step_completes_after_a_restart_without_a_retry(
        spawn: SpawnFn, project: Path, tmp_path: Path, agentcmd_home: Path, how: str) -> None:
    first, long_marker = tmp_path / "first.txt", tmp_path / "long.txt"
    (project / ".agentcmd" / "workflows" / "resume.py").write_text(
        RESUME_WORKFLOW.format(first=str(first), long_marker=str(long_marker), seconds=LONG_SECONDS))
    port, engine_port = free_port(), free_port()
    args = ("start", "--port", str(port), "--engine-port", str(engine_port), "--project", str(project),
            "--stop-grace", "5")
    child = spawn(*args)
    wait_output(child, READY, timeout=30)
    resp = httpx.post(f"http://127.0.0.1:{port}/api/workflows/resume/runs", json={}, timeout=15,
                      headers=app_headers())
    run_id = resp.json()["data"]["run_id"]
    assert run_id, resp.text
    wait_for(lambda: long_marker.exists(), 15, "the long step to start", child.output)
    assert first.read_text() == "ran\n"

    if how == "sigint":
        os.kill(child.proc.pid, signal.SIGINT)
        assert wait_exit(child, timeout=30) == 0, child.output()
    else:
        tree = [child.proc.pid, *descendants(child.proc.pid)]
        for pid in child_pids(child.output()).values():   # the children lead their own sessions
            tree += descendants(pid)
        for pid in sorted(set(tree)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        child.proc.wait(10)
        wait_for(lambda: not any(pid_alive(p) for p in tree), 10, "the killed tree to be gone")

    again = spawn(*args)
    wait_output(again, READY, timeout=30)
    wait_for(lambda: run_status(port, run_id) in ("Completed", "Failed", "Cancelled"), 30 + LONG_SECONDS,
             "the run to end after the restart", again.output)
    assert run_status(port, run_id) == "Completed", again.output()
    assert first.read_text() == "ran\n", "the completed step ran again"
    assert long_marker.read_text().count("started") >= 2, "the interrupted step did not run again"
    os.kill(again.proc.pid, signal.SIGINT)
    assert wait_exit(again, timeout=30) == 0, again.output()
