"""Where a run works: ``stay`` (the project), ``branch`` (a new branch), ``worktree``.

- ``stay``: steps run in the project directory as it is.
- ``branch``: a first memoised step switches the project to a new branch
  ``agentcmd/<run id>``; commits of the run land there.
- ``worktree``: a first memoised step adds a ``git worktree`` under
  ``<data dir>/worktrees/<run id>`` on branch ``agentcmd/<run id>``; steps
  run there, so the user's checkout is untouched. When the body returns,
  a last step removes the worktree (the branch stays, with the commits).
  When the body fails, the worktree is kept for inspection and the error
  says where it is. A cancelled run runs no more code, so its worktree
  stays too (``git worktree prune`` after deleting it).

A resumed run (``agentcmd runs resume``) has a new run id but keeps the
failed run's ``workspace`` step: the branch and worktree are the ones its
memo names, i.e. the failed run's ``agentcmd/<old run id>`` and its kept
worktree; a ``branch`` run switches the project back to the failed run's
branch. If the kept worktree was deleted since (``agentcmd workspaces
prune``), a step of the resumed run adds it again from that branch; if the
branch is gone too, the resumed run fails at once saying so (start a new
run instead).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import inngest

from agentcmd.workflows import gitops
from agentcmd.workflows.context import WorkflowContext

WorkspaceKind = Literal["stay", "branch", "worktree"]
WORKSPACES: tuple[str, ...] = ("stay", "branch", "worktree")


def worktree_path(data_dir: Path, run_id: str) -> Path:
    return data_dir / "worktrees" / gitops.branch_name_for(run_id, prefix="")


async def prepare(kind: str, sdk_step: inngest.Step, ctx: WorkflowContext) -> WorkflowContext:
    """Run the workspace's first step (memoised) and return the context steps will use."""
    if kind == "stay":
        return ctx
    branch = gitops.branch_name_for(ctx.run_id)
    if not gitops.is_git_repo(ctx.project_dir):
        raise inngest.NonRetriableError(
            f"workspace={kind!r} needs a git repository, and {ctx.project_dir} is not one; "
            f"run 'git init' there or use workspace=\"stay\"")
    if kind == "branch":
        async def make_branch() -> dict[str, Any]:
            return (await gitops.create_branch(ctx.project_dir, branch, run_id=ctx.run_id)).to_json()

        made = await sdk_step.run("workspace", make_branch)
        kept = _memo_branch(made, branch)
        if kept != branch:
            # A resumed run: its branch is the failed run's. Switch the project back to it once, in a
            # step of this run (memoised, so a later step's own branch switch is not undone on the next
            # call), so the steps that run now commit where the kept steps did.
            async def back_to_branch() -> dict[str, Any]:
                return (await gitops.create_branch(ctx.project_dir, kept, run_id=ctx.run_id)).to_json()

            await sdk_step.run(f"workspace-resume-{ctx.run_id.lower()}", back_to_branch)
        return dataclasses.replace(ctx, branch=kept)
    path = worktree_path(ctx.data_dir, ctx.run_id)

    async def add_worktree() -> dict[str, Any]:
        return (await gitops.worktree_add(ctx.project_dir, path, branch, run_id=ctx.run_id)).to_json()

    result = await sdk_step.run("workspace", add_worktree)
    where = Path(result["path"]) if isinstance(result, dict) and result.get("path") else path
    # A resumed run keeps the failed run's worktree and branch: the memo above names them.
    kept = _memo_branch(result, branch)
    if kept != branch:
        # The kept worktree may have been deleted since (`agentcmd workspaces prune`, rm -rf): add it again
        # from its branch, once, in a step of this run (memoised, so the worktree ``finish`` removes at the
        # end is not added back on the run's last call).
        async def back_to_worktree() -> dict[str, Any]:
            return await restore_worktree(ctx.project_dir, where, kept, run_id=ctx.run_id)

        await sdk_step.run(f"workspace-resume-{ctx.run_id.lower()}", back_to_worktree)
    return dataclasses.replace(ctx, workdir=where, branch=kept)


async def restore_worktree(repo: Path, path: Path, branch: str, *, run_id: str) -> dict[str, Any]:
    """The resumed run's worktree at ``path``: as kept, or added again from ``branch`` if it was deleted.

    Neither left (the branch was deleted too): a NonRetriableError saying so, since nothing of what the
    kept steps did remains to work in."""
    if (path / ".git").exists():
        return {"path": str(path), "branch": branch, "restored": False}
    await gitops.git(repo, "worktree", "prune", run_id=run_id, check=False)   # forget the deleted directory
    code, _, _ = await gitops.git(repo, "rev-parse", "--verify", "--quiet", gitops.END,
                                  f"refs/heads/{gitops.check_branch(branch)}", run_id=run_id, check=False)
    if code != 0:
        raise inngest.NonRetriableError(
            f"this run resumes a failed run whose worktree {path} was deleted (e.g. by 'agentcmd workspaces "
            f"prune') and whose branch {branch} is gone too, so nothing of what its completed steps did is "
            "left to work in; start a new run of the workflow instead (or restore the branch, e.g. from a "
            "remote, and resume again)")
    added = await gitops.worktree_add(repo, path, branch, run_id=run_id)
    return {**added.to_json(), "restored": True}


def _memo_branch(result: Any, default: str) -> str:
    """The branch the memoised workspace step made: the first run's, when this run resumes it."""
    if isinstance(result, dict) and isinstance(result.get("branch"), str) and result["branch"]:
        return str(result["branch"])
    return default


async def finish(kind: str, sdk_step: inngest.Step, ctx: WorkflowContext) -> None:
    """After a successful body: remove the run's worktree (memoised, so once)."""
    if kind != "worktree":
        return

    async def remove() -> dict[str, Any]:
        return (await gitops.worktree_remove(ctx.project_dir, ctx.workdir, run_id=ctx.run_id)).to_json()

    await sdk_step.run("workspace-cleanup", remove)


def kept_note(kind: str, ctx: WorkflowContext) -> str | None:
    if kind != "worktree":
        return None
    return f"the run's worktree was kept for inspection at {ctx.workdir} (branch {ctx.branch})"
