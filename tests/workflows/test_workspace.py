"""Run workspaces (stay, branch, worktree) and step.git, on a real git repository."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.workflows.conftest import git


@pytest.fixture
def repo(project: Path, git_identity: None) -> Path:
    """The project as a git repository with one commit (workflow files ignored)."""
    git(project, "init", "-q", "-b", "main")
    (project / ".gitignore").write_text(".agentcmd/\n*.log\n")
    (project / "README").write_text("hello\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    return project


WORKTREE = '''
from agentcmd import define_workflow

@define_workflow(id="wt", phases=["edit", "ship"], workspace="worktree", retries=0)
async def wt(ctx, step):
    with step.phase("edit"):
        await step.cli("change", "echo changed > README; echo new > added.txt")
        diff = await step.git("diff")
    with step.phase("ship"):
        c = await step.git("commit", commit_message="agent change")
        again = await step.git("commit-again", "commit", commit_message="nothing left")
    if ctx.input.get("fail"):
        raise RuntimeError("tests still fail")
    return {"workdir": str(ctx.workdir), "branch": ctx.branch, "sha": c.sha, "committed": c.committed,
            "again": again.committed, "diff_has_change": "+changed" in diff.diff}
'''


def test_worktree_run_works_in_its_own_checkout_commits_on_its_branch_and_removes_it(
        app_server: Any, write_workflow: Any, repo: Path) -> None:
    write_workflow("wt.py", WORKTREE)
    server = app_server()
    run = server.driver.run("wt", {}, run_id="01RUNWORKTREE")
    assert run.status == "Completed", run.calls[-1]
    out = run.output
    assert out["branch"] == "agentcmd/01runworktree" and out["committed"] is True and out["again"] is False
    assert out["diff_has_change"] is True
    assert Path(out["workdir"]).parent.name == "worktrees" and not Path(out["workdir"]).exists()
    # The user's checkout is untouched; the branch holds the commit.
    assert (repo / "README").read_text() == "hello\n" and git(repo, "branch", "--show-current") == "main"
    assert git(repo, "log", "-1", "--format=%H %s", out["branch"]) == f"{out['sha']} agent change"
    assert git(repo, "show", f"{out['branch']}:added.txt") == "new"
    assert run.names[0] == "workspace" and run.names[-1] == "workspace-cleanup"


def test_a_failed_worktree_run_keeps_the_worktree_and_says_where(
        app_server: Any, write_workflow: Any, repo: Path, agentcmd_home: Path) -> None:
    write_workflow("wt.py", WORKTREE)
    run = app_server().driver.run("wt", {"fail": True}, run_id="01RUNFAILED")
    assert run.status == "Failed"
    message = run.output["message"]
    assert "tests still fail" in message and "worktree was kept for inspection at" in message
    kept = agentcmd_home / "data" / "worktrees" / "01runfailed"
    assert str(kept) in message and (kept / "added.txt").read_text() == "new\n"


def test_branch_workspace_switches_the_project_to_a_run_branch(
        app_server: Any, write_workflow: Any, repo: Path) -> None:
    write_workflow("br.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="br", workspace="branch", retries=0)
        async def br(ctx, step):
            await step.cli("edit", "echo more >> README")
            c = await step.git("save", commit_message="more", branch="feature/x")
            return [ctx.branch, c.branch, c.action]
    ''')
    run = app_server().driver.run("br", {}, run_id="01RUNBRANCH")
    assert run.output == ["agentcmd/01runbranch", "feature/x", "commit-and-branch"]
    assert git(repo, "branch", "--show-current") == "feature/x"
    assert git(repo, "log", "-1", "--format=%s") == "more"
    assert "agentcmd/01runbranch" in git(repo, "branch", "--list")


def test_git_workspace_outside_a_repository_is_a_clear_error(app_server: Any, write_workflow: Any,
                                                             project: Path) -> None:
    write_workflow("br.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="br", workspace="branch", retries=2)
        async def br(ctx, step):
            return 1
    ''')
    if any((p / ".git").exists() for p in project.parents):
        pytest.skip("the temporary directory is inside a git repository")
    run = app_server().driver.run("br", max_attempts=3)
    assert run.status == "Failed" and len(run.calls) == 1
    assert "needs a git repository" in run.output["message"] and "git init" in run.output["message"]


def test_pr_without_gh_is_a_clear_non_retried_error(app_server: Any, write_workflow: Any, repo: Path,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    os.symlink(shutil.which("git") or "/usr/bin/git", only_git / "git")
    monkeypatch.setenv("PATH", str(only_git))
    write_workflow("pr.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="pr", retries=3)
        async def pr(ctx, step):
            return (await step.git("open-pr", "pr", title="Fix tests")).url
    ''')
    run = app_server().driver.run("pr", max_attempts=4)
    assert run.status == "Failed" and len(run.calls) == 1
    assert "needs the GitHub CLI 'gh'" in run.output["message"] and "install gh" in run.output["message"]


def test_an_unknown_git_action_fails_at_the_call(app_server: Any, write_workflow: Any, repo: Path) -> None:
    write_workflow("bad.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="bad", retries=0)
        async def bad(ctx, step):
            await step.git("x", "rebase")
    ''')
    run = app_server().driver.run("bad")
    assert run.status == "Failed" and "unknown action 'rebase'" in run.output["message"]


def test_commit_on_a_branch_then_push_to_the_remote(app_server: Any, write_workflow: Any, repo: Path,
                                                    tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    write_workflow("push.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="push", phases=["ship"], retries=0)
        async def push(ctx, step):
            with step.phase("ship"):
                await step.git("branch", branch="feature/push")
                await step.cli("edit", "echo pushed > pushed.txt")
                c = await step.git("commit", commit_message="to push")
                p = await step.git("push")
                status = await step.git("status")
            return [c.sha, p.branch, p.action, status.output]
    ''')
    run = app_server().driver.run("push")
    assert run.status == "Completed", run.calls[-1]
    sha, branch, action, status = run.output
    assert (branch, action, status) == ("feature/push", "push", "")
    assert git(remote, "rev-parse", "refs/heads/feature/push") == sha


def test_worktree_add_and_remove_as_git_steps(app_server: Any, write_workflow: Any, repo: Path,
                                              tmp_path: Path) -> None:
    tree = tmp_path / "trees" / "side"
    write_workflow("trees.py", f'''
        from agentcmd import define_workflow

        @define_workflow(id="trees", retries=0)
        async def trees(ctx, step):
            added = await step.git("add", "worktree-add", branch="side", path={str(tree)!r})
            seen = await step.cli("look", "cat README", cwd=added.path)
            removed = await step.git("remove", "worktree-remove", path={str(tree)!r})
            return [added.branch, seen.stdout, removed.action]
    ''')
    run = app_server().driver.run("trees")
    assert run.output == ["side", "hello\n", "worktree-remove"]
    assert not tree.exists() and "side" in git(repo, "branch", "--list")
