"""Resuming a failed ``worktree`` run whose kept worktree was deleted: real engine, app server and CLI.

``agentcmd workspaces prune`` removes the worktree a failed run kept (its
branch stays: it has commits on no other branch). Resumed, the run adds the
worktree again from that branch and goes on there, so what the kept steps
committed is still there. When the branch was removed too (``--branches
--force``), there is nothing to work in: the resumed run fails at once with
an error saying what is gone and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.e2e import cli, dev_pair
from tests.polling import wait_for
from tests.workflows.conftest import git

pytestmark = pytest.mark.slow

WORKFLOW = '''
from agentcmd import define_workflow


@define_workflow(id="wtresume", retries=0, workspace="worktree")
async def wtresume(ctx, step):
    await step.cli("one", f"echo run >> {ctx.project_dir}/one.log; echo kept > made.txt")
    await step.git("save", commit_message="made by step one")
    await step.cli("two", f"test -f {ctx.project_dir}/fixed")
    three = await step.cli("three", "cat made.txt")
    return {"three": three.stdout.strip(), "workdir": str(ctx.workdir), "branch": ctx.branch}
'''


def test_a_resumed_run_adds_its_deleted_worktree_again_from_its_branch_or_says_both_are_gone(
        project: Path, write_workflow: Any, git_identity: None, procs: Any, agentcmd_home: Path) -> None:
    git(project, "init", "-q", "-b", "main")
    (project / ".gitignore").write_text(".agentcmd/\n*.log\nfixed\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "init")
    write_workflow("wtresume.py", WORKFLOW)
    pair = dev_pair(procs, project)
    env = {**pair.base, "PORT": pair.app_url.rsplit(":", 1)[1], "AGENTCMD_ENGINE_URL": pair.engine_url}

    def api(method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, pair.app_url + path, timeout=30, **kw)

    def ended(run_id: str) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            run: dict[str, Any] = api("GET", f"/api/runs/{run_id}").json()["data"]
            return run if run["status"] in ("Completed", "Failed", "Cancelled") else None
        found: dict[str, Any] = wait_for(seen, 60, f"run {run_id} to end",
                                         lambda: pair.engine.output()[-3000:] + pair.app.output()[-3000:])
        return found

    def failed_run() -> tuple[str, Path]:
        started = api("POST", "/api/workflows/wtresume/runs", json={})
        assert started.status_code == 202, started.text
        run_id = str(started.json()["data"]["run_id"])
        assert ended(run_id)["status"] == "Failed"
        kept = agentcmd_home / "data" / "worktrees" / run_id.lower()
        assert (kept / "made.txt").read_text() == "kept\n"
        return run_id, kept

    def resume(run_id: str) -> dict[str, Any]:
        out = cli("runs", "resume", run_id, "--wait", "--json", env=env)
        assert out.stdout or out.stderr, out
        new = api("GET", f"/api/runs/{run_id}").json()["data"]["resumed_as"]
        assert len(new) == 1, (out.stdout, out.stderr)
        return ended(new[0])

    # 1. The worktree is pruned, its branch stays: the resumed run adds the worktree again and completes.
    old, kept = failed_run()
    out = cli("workspaces", "prune", "--older-than", "0", "--worktrees", "--project", str(project), env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not kept.exists() and git(project, "branch", "--list", f"agentcmd/{old.lower()}")
    (project / "fixed").touch()
    done = resume(old)
    assert done["status"] == "Completed", done
    assert done["output"]["three"] == "kept", "the committed file of the kept step is in the re-added worktree"
    assert done["output"]["workdir"] == str(kept) and done["output"]["branch"] == f"agentcmd/{old.lower()}"
    assert (project / "one.log").read_text() == "run\n", "step one was kept, not run again"
    assert not kept.exists(), "the completed run removed its worktree as usual"

    # 2. Worktree and branch both gone: the resumed run fails at once, saying so and what to do.
    (project / "fixed").unlink()
    old, kept = failed_run()
    out = cli("workspaces", "prune", "--older-than", "0", "--worktrees", "--branches", "--force",
              "--project", str(project), env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not kept.exists() and not git(project, "branch", "--list", f"agentcmd/{old.lower()}")
    (project / "fixed").touch()
    gone = resume(old)
    assert gone["status"] == "Failed", gone
    message = json.dumps(gone["output"])   # the run's error: {"name": ..., "message": ...}
    assert str(kept) in message and f"agentcmd/{old.lower()}" in message, message
    assert "deleted" in message and "start a new run" in message, message
    assert [s["id"] for s in gone["steps"] if s["status"] == "Completed"] == ["workspace", "one", "save"]
