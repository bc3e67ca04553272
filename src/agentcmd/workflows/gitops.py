"""Git (and ``gh``) operations behind ``step.git`` and the run workspaces.

Each action is a short sequence of git CLI calls in ``cwd`` that returns a
``GitResult`` or raises ``GitError`` carrying the failing command and its
stderr. Everything goes through ``process.run_process``: no blocking, and
a cancelled run stops a ``git push`` as it stops any other command.

Branch names, bases and remotes often come from workflow input, so none may
become a git option: ``--receive-pack=CMD`` as a branch ran ``CMD`` on
``push``, ``--output=FILE`` as a base made ``git diff`` write a file. Each
value is checked first (``check_branch``: git's ``check-ref-format`` rules
plus no leading ``-`` or ``+``; ``check_revision``/``check_remote``: no
leading ``-``, no control characters) and every git call puts
``--end-of-options`` before the values it takes from a caller.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import inngest

from agentcmd.errors import AgentcmdError, Variant
from agentcmd.privatefs import ensure_private_dir
from agentcmd.workflows.process import run_process
from agentcmd.workflows.results import GitResult

ACTIONS = ("status", "diff", "branch", "commit", "commit-and-branch", "push",
           "worktree-add", "worktree-remove", "pr")

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}
END = "--end-of-options"
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class GitError(AgentcmdError):
    """A ``step.git`` action failed (git or gh exited non-zero) or was refused."""

    code = "git_failed"
    fix_hint = "read git's message in the step's error; fix the repository state or the step's arguments"
    variants: ClassVar[Mapping[str, Variant]] = {
        "invalid_git_input": ("step.git refused a branch, ref, path or remote that git could read as an option "
                              "or that is not a valid name", "pass a plain name (the message says which rule)"),
        "gh_not_found": ("step.git pr needs the GitHub CLI 'gh', which is not on PATH",
                         "install gh (https://cli.github.com) and run 'gh auth login'"),
    }


def _refuse(what: str, value: str, why: str, fix: str) -> GitError:
    return GitError(f"step.git: {what} {value!r} is not allowed: {why}", fix, code="invalid_git_input")


def check_branch(name: str) -> str:
    """``name`` if git would accept it as a branch (``git check-ref-format --branch`` rules) and it
    cannot be read as an option or a forced refspec; else ``GitError``."""
    fix = "use letters, digits, '/', '-', '_' and '.', e.g. 'agentcmd/fix-login'"
    if not isinstance(name, str) or not name:
        raise _refuse("branch", str(name), "it is empty", fix)
    if name[0] in "-+":
        raise _refuse("branch", name, f"it starts with {name[0]!r} (git would read an option or a forced push)", fix)
    problems = [
        (_BAD_REF_CHARS.search(name) is not None, "it contains a space, a control character or one of ~^:?*[\\"),
        (".." in name or "@{" in name or name == "@", "it contains '..' or '@{' or is '@'"),
        (name.startswith("/") or name.endswith("/") or "//" in name, "it has an empty path component"),
        (name.endswith("."), "it ends with '.'"),
        (any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")),
         "a component starts with '.' or ends with '.lock'"),
    ]
    for bad, why in problems:
        if bad:
            raise _refuse("branch", name, why, fix)
    return name


def check_revision(value: str, what: str = "base") -> str:
    """A commit-ish from a caller (``main``, ``HEAD~1``, a sha): no option, no control characters."""
    if not isinstance(value, str) or not value.strip():
        raise _refuse(what, str(value), "it is empty", "name a branch, tag or commit, e.g. 'main'")
    if value.startswith("-") or re.search(r"[\x00-\x1f\x7f]", value):
        raise _refuse(what, value, "it starts with '-' or contains a control character",
                      "name a branch, tag or commit, e.g. 'main' or 'HEAD~1'")
    return value


def check_remote(value: str) -> str:
    """A remote name or URL from a caller: not an option, no control characters."""
    if not isinstance(value, str) or not value or value.startswith("-") or re.search(r"[\x00-\x20\x7f]", value):
        raise _refuse("remote", str(value), "it is empty, starts with '-' or contains a space or control character",
                      "name a configured remote, e.g. 'origin'")
    return value


def branch_name_for(run_id: str, prefix: str = "agentcmd/") -> str:
    """A branch name for a run: ``agentcmd/<run id>`` made safe for git."""
    return prefix + re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.").lower()


async def git(cwd: Path, *args: str, run_id: str | None = None, check: bool = True) -> tuple[int, str, str]:
    """Run ``git ARGS`` in ``cwd``; raise ``GitError`` on failure when ``check``."""
    res = await run_process(["git", *args], cwd=cwd, env=_GIT_ENV, run_id=run_id)
    if check and res.exit_code != 0:
        raise GitError(f"git {' '.join(args)} failed (exit {res.exit_code}) in {cwd}: "
                       f"{(res.stderr or res.stdout).strip()[-2000:]}",
                       "check the repository state; run the same command by hand to see more")
    return res.exit_code, res.stdout, res.stderr


async def _head(cwd: Path, run_id: str | None) -> str | None:
    code, out, _ = await git(cwd, "rev-parse", "HEAD", run_id=run_id, check=False)
    return out.strip() if code == 0 else None


async def _current_branch(cwd: Path, run_id: str | None) -> str | None:
    code, out, _ = await git(cwd, "rev-parse", "--abbrev-ref", "HEAD", run_id=run_id, check=False)
    return out.strip() if code == 0 else None


async def create_branch(cwd: Path, branch: str, *, base: str | None = None,
                        run_id: str | None = None) -> GitResult:
    """Switch to ``branch``, creating it (from ``base`` or HEAD) when it does not exist."""
    check_branch(branch)
    if base is not None:
        check_revision(base)
    code, _, _ = await git(cwd, "rev-parse", "--verify", "--quiet", END, f"refs/heads/{branch}",
                           run_id=run_id, check=False)
    if code == 0:
        _, out, err = await git(cwd, "switch", END, branch, run_id=run_id)
    else:
        _, out, err = await git(cwd, "switch", "-c", branch, END, *([base] if base else []), run_id=run_id)
    return GitResult(action="branch", ok=True, output=(out + err).strip(), branch=branch,
                     sha=await _head(cwd, run_id))


async def commit(cwd: Path, message: str, *, add_all: bool = True, allow_empty: bool = False,
                 run_id: str | None = None) -> GitResult:
    """Stage everything (unless ``add_all=False``) and commit; nothing to commit is not an error."""
    if not message.strip():
        raise GitError("git commit needs a commit message", "pass commit_message=\"...\"")
    if add_all:
        await git(cwd, "add", "-A", run_id=run_id)
    code, _, _ = await git(cwd, "diff", "--cached", "--quiet", run_id=run_id, check=False)
    if code == 0 and not allow_empty:
        return GitResult(action="commit", ok=True, output="nothing to commit", committed=False,
                         sha=await _head(cwd, run_id), branch=await _current_branch(cwd, run_id))
    args = ["commit", f"--message={message}"] + (["--allow-empty"] if allow_empty else [])
    _, out, err = await git(cwd, *args, run_id=run_id)
    return GitResult(action="commit", ok=True, output=(out + err).strip(), committed=True,
                     sha=await _head(cwd, run_id), branch=await _current_branch(cwd, run_id))


async def diff(cwd: Path, *, base: str | None = None, run_id: str | None = None) -> GitResult:
    """The working tree's diff against ``base`` (default HEAD); ``output`` is ``git status --porcelain``,
    which also lists untracked files (they are not in the diff)."""
    rev = check_revision(base) if base is not None else "HEAD"
    _, out, _ = await git(cwd, "diff", END, rev, "--", run_id=run_id, check=False)
    _, stat, _ = await git(cwd, "status", "--porcelain", run_id=run_id)
    return GitResult(action="diff", ok=True, output=stat.strip(), diff=out)


async def push(cwd: Path, *, remote: str = "origin", branch: str | None = None,
               run_id: str | None = None) -> GitResult:
    check_remote(remote)
    branch = branch or await _current_branch(cwd, run_id)
    if not branch:
        raise GitError("git push: cannot tell which branch to push", "pass branch=\"...\"")
    check_branch(branch)
    _, out, err = await git(cwd, "push", "--set-upstream", END, remote, branch, run_id=run_id)
    return GitResult(action="push", ok=True, output=(out + err).strip(), branch=branch,
                     sha=await _head(cwd, run_id))


async def worktree_add(repo: Path, path: Path, branch: str, *, base: str | None = None,
                       run_id: str | None = None) -> GitResult:
    """Add a worktree at ``path`` on a new ``branch``; reuse it if a retry finds it there."""
    check_branch(branch)
    if base is not None:
        check_revision(base)
    if (path / ".git").exists():
        return GitResult(action="worktree-add", ok=True, output="worktree exists", path=str(path),
                         branch=branch, sha=await _head(path, run_id))
    ensure_private_dir(path.parent)
    code, _, _ = await git(repo, "rev-parse", "--verify", "--quiet", END, f"refs/heads/{branch}",
                           run_id=run_id, check=False)
    args = ["worktree", "add", END, str(path), branch] if code == 0 else \
        ["worktree", "add", "-b", branch, END, str(path), *([base] if base else [])]
    _, out, err = await git(repo, *args, run_id=run_id)
    return GitResult(action="worktree-add", ok=True, output=(out + err).strip(), path=str(path),
                     branch=branch, sha=await _head(path, run_id))


async def worktree_remove(repo: Path, path: Path, *, run_id: str | None = None) -> GitResult:
    if not path.exists():
        await git(repo, "worktree", "prune", run_id=run_id, check=False)
        return GitResult(action="worktree-remove", ok=True, output="already removed", path=str(path))
    _, out, err = await git(repo, "worktree", "remove", "--force", END, str(path), run_id=run_id)
    return GitResult(action="worktree-remove", ok=True, output=(out + err).strip(), path=str(path))


async def pull_request(cwd: Path, *, title: str, body: str = "", base: str | None = None,
                       run_id: str | None = None) -> GitResult:
    """Open a PR with the GitHub CLI; a missing ``gh`` is a clear error, not a traceback."""
    gh = shutil.which("gh")
    if gh is None:
        raise GitError("step.git pr needs the GitHub CLI 'gh', which is not on PATH",
                       "install gh (https://cli.github.com) and run 'gh auth login'", code="gh_not_found")
    # --flag=value: gh never reads a title or body starting with '-' as a flag.
    args = [gh, "pr", "create", f"--title={title}", f"--body={body}"]
    if base:
        args.append(f"--base={check_branch(base)}")
    res = await run_process(args, cwd=cwd, env=_GIT_ENV, run_id=run_id)
    if res.exit_code != 0:
        raise GitError(f"gh pr create failed (exit {res.exit_code}): {res.stderr.strip()[-2000:]}",
                       "check 'gh auth status' and that the branch was pushed")
    url = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else None
    return GitResult(action="pr", ok=True, output=res.stdout.strip(), url=url,
                     branch=await _current_branch(cwd, run_id))


def is_git_repo(path: Path) -> bool:
    return any((p / ".git").exists() for p in (path, *path.parents)) or bool(os.environ.get("GIT_DIR"))


def infer_action(step_id: str, commit_message: str | None, branch: str | None,
                 title: str | None) -> str:
    """The action ``step.git`` takes when none is named: read from the step id or from what was given."""
    if step_id in ACTIONS:
        return step_id
    if commit_message and branch:
        return "commit-and-branch"
    if commit_message:
        return "commit"
    if title:
        return "pr"
    if branch:
        return "branch"
    raise inngest.NonRetriableError(
        f"step.git {step_id!r}: say what to do with action= (one of {', '.join(ACTIONS)})")
