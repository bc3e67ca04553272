"""Workspaces cleanup: what finished runs left on disk, and the rules for removing it.

Three kinds of item pile up (docs/running.md "Workspaces cleanup"):

- ``worktree``: ``<data dir>/worktrees/<run>``, kept when a worktree run
  fails or is cancelled (``workflows/workspace.py``);
- ``branch``: ``agentcmd/<run>`` in the project repository, made by the
  ``branch`` and ``worktree`` workspaces, never deleted by a run;
- ``artifacts``: ``<data dir>/artifacts/<run id>`` (``step.artifact``).

``scan`` finds them and asks the engine about each one's run (status and
end time); ``plan`` decides, item by item, whether it may go and, if not,
why not; ``apply`` removes what the plan allows. The CLI (``agentcmd
workspaces``) and the app server's background policy (``server/workspacepolicy.py``)
share these three, so both follow the same rules:

- only items of finished runs (Completed, Failed, Cancelled) go; a run the
  engine says is still going, or an item an in-flight run's workspace step
  points at (a resumed run reuses the failed run's worktree), is never
  touched, even with ``force``; a run whose status is unknown (engine
  unreachable, or a run the engine no longer knows) only with ``force``;
- an item is old enough when its run ended (or, later, the item last
  changed) before the cut-off;
- a branch with commits that are on no other branch (local or
  remote-tracking, other ``agentcmd/*`` branches left out; or not on
  ``base`` when one is given), or with commits its upstream lacks, is kept
  unless ``force``; a worktree with uncommitted changes too;
- names that agentcmd does not make are listed and never touched.

Every git call is an argv list run through ``process.run_process`` (never a
shell, never blocking the loop); branch names are checked against
``agentcmd/<run>`` before they reach git, as full ``refs/heads/...`` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from agentcmd.errors import AgentcmdError, AuthError, NotFoundError, UnavailableError
from agentcmd.workflows import gitops

Kind = Literal["worktree", "branch", "artifacts"]
KINDS: tuple[Kind, ...] = ("worktree", "branch", "artifacts")
FINISHED = ("Completed", "Failed", "Cancelled", "Skipped")
UNKNOWN = "unknown"
BRANCH_PREFIX = "agentcmd/"
# What agentcmd writes: a run id made safe (worktree dirs, branch tails) or a run id (artifact dirs).
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def run_key(name: str) -> str | None:
    """The run an item name stands for, in the form worktree dirs and branches use (lower case,
    ``gitops.branch_name_for``); None for a name agentcmd does not make (never touched)."""
    if not _SAFE_NAME.match(name) or ".." in name or name.endswith(".lock"):
        return None
    key = gitops.branch_name_for(name, prefix="")
    return key or None


def check_run_branch(name: str) -> str:
    """``name`` if it is a run branch ``agentcmd/<run>`` that git reads as a plain branch; else GitError."""
    tail = name[len(BRANCH_PREFIX):] if name.startswith(BRANCH_PREFIX) else ""
    if not tail or run_key(tail) != tail:
        raise gitops.GitError(f"workspaces: branch {name!r} is not a run branch 'agentcmd/<run>'",
                              "only branches agentcmd made for a run are pruned", code="invalid_git_input")
    return gitops.check_branch(name)


@dataclasses.dataclass
class Item:
    """One workspace item and what is known about it (``to_json`` is ``--json``'s shape)."""

    kind: Kind
    name: str
    path: str | None = None
    key: str | None = None
    run_id: str | None = None
    status: str = UNKNOWN
    status_note: str | None = None
    ended_at: str | None = None
    modified: float | None = None
    bytes: int | None = None
    repo: str | None = None
    dirty: bool | None = None
    unmerged: int | None = None
    upstream: str | None = None
    unpushed: int | None = None
    checked_out: str | None = None
    in_use_by: str | None = None
    problem: str | None = None

    @property
    def pushed(self) -> bool | None:
        """True when the branch has an upstream holding all its commits; False when not; None for others."""
        if self.kind != "branch":
            return None
        return self.upstream is not None and self.unpushed == 0

    def last_used(self) -> float | None:
        """When the run ended or the item last changed, whichever is later (epoch seconds)."""
        ended = _epoch(self.ended_at)
        times = [t for t in (ended, self.modified) if t is not None]
        return max(times) if times else None

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["pushed"] = self.pushed
        return out


@dataclasses.dataclass
class Decision:
    item: Item
    remove: bool
    reason: str
    done: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.item.to_json(), "action": "remove" if self.remove else "keep", "reason": self.reason,
                "removed": self.done, "error": self.error}


@dataclasses.dataclass
class Scan:
    items: list[Item]
    engine_note: str | None = None  # why run statuses are unknown (engine down, refused), if they are


class RunSource(Protocol):
    """The engine's REST API as ``server/engine.py``'s ``EngineRestClient`` offers it."""

    async def get_run(self, run_id: str) -> dict[str, Any]: ...
    async def list_runs(self, *, function_id: str | None = None, status: str | None = None,
                        limit: int = 20, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]: ...
    async def run_steps(self, run_id: str) -> list[dict[str, Any]]: ...


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def _git(cwd: Path, *args: str) -> tuple[int, str]:
    code, out, err = await gitops.git(cwd, *args, check=False)
    return code, out if code == 0 else (err or out)


def _tree_size(path: Path) -> int:
    """Bytes under ``path`` (symlinks not followed)."""
    total = 0
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _newest_mtime(*paths: Path) -> float | None:
    times = []
    for p in paths:
        with contextlib.suppress(OSError):
            times.append(p.lstat().st_mtime)
    return max(times) if times else None


def _worktree_gitdir(path: Path) -> Path | None:
    """The ``gitdir:`` a linked worktree's ``.git`` file names, or None."""
    try:
        text = (path / ".git").read_text(errors="replace")
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    return Path(text[len("gitdir:"):].strip())


async def _scan_dir(kind: Kind, root: Path) -> list[Item]:
    items: list[Item] = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return items
    for entry in entries:
        item = Item(kind, entry.name, path=str(entry), key=run_key(entry.name))
        if item.key is None:
            item.problem = "not a name agentcmd makes for a run: left alone"
        if entry.is_symlink() or not entry.is_dir():
            item.problem = "not a directory: left alone"
            item.key = None
        if item.key is not None:
            item.bytes = await asyncio.to_thread(_tree_size, entry)
            item.modified = _newest_mtime(entry)
        items.append(item)
    return items


async def _fill_worktree(item: Item) -> None:
    path = Path(item.path or "")
    gitdir = _worktree_gitdir(path)
    if gitdir is None or not gitdir.is_dir():
        item.problem = item.problem or "not a git worktree (no .git file naming a live repository)"
        return
    # <repo>/.git/worktrees/<name> -> <repo>/.git -> <repo>; its HEAD log changes on each commit and checkout
    # (not the index: any 'git status' may refresh it, which would make looking count as using).
    common = gitdir.parent.parent
    item.repo = str(common.parent if common.name == ".git" else common)
    times = [t for t in (item.modified, _newest_mtime(gitdir / "logs" / "HEAD")) if t is not None]
    item.modified = max(times) if times else None
    # Reads, never writes (no index refresh); no fsmonitor hook runs from the repository's config.
    code, out = await _git(path, "--no-optional-locks", "-c", "core.fsmonitor=false", "status", "--porcelain")
    if code != 0:
        item.problem = f"git status failed: {out.strip()[-300:]}"
        return
    item.dirty = bool(out.strip())


async def _checked_out(repo: Path) -> dict[str, str]:
    """Branch (``refs/heads/...``) -> the worktree path where it is checked out."""
    code, out = await _git(repo, "worktree", "list", "--porcelain")
    found: dict[str, str] = {}
    if code != 0:
        return found
    path = ""
    for line in out.splitlines():
        if line.startswith("worktree "):
            path = line[len("worktree "):]
        elif line.startswith("branch "):
            found[line[len("branch "):]] = path
    return found


async def _scan_branches(repo: Path, base: str | None) -> list[Item]:
    if not gitops.is_git_repo(repo):
        return []
    code, out = await _git(repo, "for-each-ref", "--format=%(refname)%00%(upstream)%00%(upstream:track)"
                           "%00%(committerdate:unix)", "refs/heads/agentcmd/")
    if code != 0:
        return []
    checked_out = await _checked_out(repo)
    code, common_dir = await _git(repo, "rev-parse", "--git-common-dir")
    common = (repo / common_dir.strip()) if code == 0 else repo / ".git"
    items: list[Item] = []
    for line in out.splitlines():
        ref, upstream, track, when = ([*line.split("\x00"), "", "", "", ""])[:4]
        name = ref[len("refs/heads/"):]
        item = Item("branch", name, repo=str(repo))
        try:
            check_run_branch(name)
        except gitops.GitError:
            item.problem = "not a run branch name agentcmd makes: left alone"
            items.append(item)
            continue
        item.key = name[len(BRANCH_PREFIX):]
        # When the branch last moved: its reflog's mtime (the tip's commit date says when the commit was
        # made, which for a branch without commits of its own is its base's date).
        item.modified = _newest_mtime(common / "logs" / ref) or (float(when) if when.isdigit() else None)
        item.checked_out = checked_out.get(ref)
        if upstream and "gone" not in track:
            item.upstream = upstream
            code, n = await _git(repo, "rev-list", "--count", ref, "--not", upstream)
            item.unpushed = int(n.strip()) if code == 0 and n.strip().isdigit() else None
        not_on = ["--not", base] if base else ["--not", "--exclude=agentcmd/*", "--branches",
                                              "--exclude=*/agentcmd/*", "--remotes"]
        code, n = await _git(repo, "rev-list", "--count", ref, *not_on)
        if code == 0 and n.strip().isdigit():
            item.unmerged = int(n.strip())
        else:
            item.problem = f"cannot tell whether its commits are on its base: {n.strip()[-300:]}"
        items.append(item)
    return items


def _step_output(step: dict[str, Any]) -> dict[str, Any]:
    out = step.get("output")
    if isinstance(out, dict) and isinstance(out.get("data"), dict):
        out = out["data"]
    return out if isinstance(out, dict) else {}


async def _in_use(engine: RunSource) -> dict[str, str]:
    """Worktree paths and branches the workspace step of an in-flight run points at -> that run's id."""
    used: dict[str, str] = {}
    for status in ("Running", "Queued"):
        cursor: str | None = None
        for _ in range(100):   # 100 pages of 200 runs in flight is far beyond any real engine
            runs, cursor = await engine.list_runs(status=status, limit=200, cursor=cursor)
            for run in runs:
                run_id = str(run.get("run_id") or "")
                if not run_id:
                    continue
                try:
                    steps = await engine.run_steps(run_id)
                except NotFoundError:
                    continue
                for step in steps:
                    if step.get("name") in ("workspace", "step:workspace") or step.get("step_id") == "workspace":
                        out = _step_output(step)
                        for value in (out.get("path"), out.get("branch")):
                            if isinstance(value, str) and value:
                                used[value] = run_id
            if not cursor:
                break
    return used


async def _lookup(engine: RunSource, name: str) -> dict[str, Any] | None:
    """The engine's run for an item name: the name as is, then upper case (run ids are ULIDs, and
    worktree dirs and branches hold them in lower case)."""
    for candidate in dict.fromkeys((name, name.upper())):
        try:
            return await engine.get_run(candidate)
        except NotFoundError:
            continue
    return None


async def scan(data_dir: Path, project_dir: Path, engine: RunSource | None, *,
               base: str | None = None, kinds: Iterable[Kind] = KINDS) -> Scan:
    """Everything the workspaces left, with each run's status from ``engine`` (None: unknown)."""
    if base is not None:
        gitops.check_revision(base)
    kinds = tuple(kinds)
    items: list[Item] = []
    if "worktree" in kinds:
        for item in await _scan_dir("worktree", data_dir / "worktrees"):
            if item.key is not None:
                await _fill_worktree(item)
            items.append(item)
    if "branch" in kinds:
        items += await _scan_branches(project_dir, base)
    if "artifacts" in kinds:
        items += await _scan_dir("artifacts", data_dir / "artifacts")
    note = None if engine is not None else "no engine was asked"
    if engine is not None:
        try:
            used = await _in_use(engine)
            runs: dict[str, dict[str, Any] | None] = {}
            for item in items:
                if item.key is None:
                    continue
                for ref in (item.path, item.name):
                    if ref and ref in used:
                        item.in_use_by = used[ref]
                lookup_name = item.name if item.kind == "artifacts" else item.key
                if lookup_name not in runs:
                    runs[lookup_name] = await _lookup(engine, lookup_name)
                run = runs[lookup_name]
                if run is None:
                    item.status_note = "the engine does not know this run (pruned by retention, or another engine's)"
                    continue
                item.run_id = str(run.get("run_id") or lookup_name)
                item.status = str(run.get("status") or UNKNOWN)
                item.ended_at = run.get("ended_at") if isinstance(run.get("ended_at"), str) else None
        except (UnavailableError, AuthError) as exc:
            note = exc.what
            for item in items:
                item.status, item.run_id, item.ended_at, item.in_use_by = UNKNOWN, None, None, None
                item.status_note = "the engine could not be asked"
    return Scan(items, note)


def plan(found: Scan, *, older_than: float, force: bool = False, now: float | None = None) -> list[Decision]:
    """Decide for every item whether it goes, and why not when it stays."""
    now = time.time() if now is None else now
    decisions: list[Decision] = []
    for item in found.items:
        decisions.append(Decision(item, *_decide(item, older_than, force, now)))
    # A branch checked out in a worktree that goes too can go after it.
    leaving = {d.item.path for d in decisions if d.remove and d.item.kind == "worktree"}
    for d in decisions:
        if d.remove and d.item.kind == "branch" and d.item.checked_out and d.item.checked_out not in leaving:
            d.remove, d.reason = False, f"checked out in {d.item.checked_out} (remove that worktree first)"
    return decisions


def age_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _decide(item: Item, older_than: float, force: bool, now: float) -> tuple[bool, str]:
    if item.key is None:
        return False, item.problem or "not a name agentcmd makes: left alone"
    if item.in_use_by:
        return False, f"in use by run {item.in_use_by}, which has not finished"
    if item.status == UNKNOWN:
        if not force:
            why = item.status_note or "the run's status is unknown"
            return False, f"{why}: kept unless --force"
    elif item.status not in FINISHED:
        return False, f"run is {item.status}"
    last = item.last_used()
    if last is not None and now - last < older_than:
        return False, f"last used {age_text(now - last)} ago, within --older-than {age_text(older_than)}"
    if item.problem and item.kind != "worktree":
        return False, item.problem
    if item.kind == "worktree":
        if item.problem:
            return (True, f"{item.problem}; --force deletes the directory") if force else \
                (False, f"{item.problem}: kept unless --force")
        if item.dirty and not force:
            return False, "has uncommitted changes: kept unless --force"
    if item.kind == "branch":
        if item.unmerged and not force:
            return False, f"has {item.unmerged} commit(s) not on its base: kept unless --force"
        if item.unpushed and not force:
            return False, f"has {item.unpushed} commit(s) not pushed to {item.upstream}: kept unless --force"
    state = item.status if item.status != UNKNOWN else "status unknown, --force"
    return True, f"run {state}" + (f", ended {item.ended_at}" if item.ended_at else "")


async def _remove_worktree(item: Item, force: bool) -> None:
    path = Path(item.path or "")
    if item.repo and not item.problem:
        repo = Path(item.repo)
        args = ["worktree", "remove", *(["--force"] if force else []), gitops.END, str(path)]
        code, out = await _git(repo, *args)
        if code != 0:
            raise gitops.GitError(f"git worktree remove {path} failed: {out.strip()[-500:]}",
                                  "run 'git worktree remove' by hand to see why")
        await _git(repo, "worktree", "prune")
    elif path.exists():
        await asyncio.to_thread(shutil.rmtree, path)


async def _remove_branch(item: Item) -> None:
    name = check_run_branch(item.name)
    code, out = await _git(Path(item.repo or "."), "branch", "-D", gitops.END, name)
    if code != 0:
        raise gitops.GitError(f"git branch -D {name} failed: {out.strip()[-500:]}",
                              "run 'git branch -D' by hand to see why")


async def _remove_dir(item: Item) -> None:
    path = Path(item.path or "")
    if path.is_symlink() or not path.is_dir():
        raise gitops.GitError(f"{path} is not a directory", "remove it by hand")
    await asyncio.to_thread(shutil.rmtree, path)


async def apply(decisions: list[Decision], *, force: bool = False) -> list[Decision]:
    """Remove what ``plan`` allows: worktrees first (their branches can then go), then branches and
    artifacts. One failure is recorded on its decision and the others go on."""
    removers: dict[Kind, Callable[[Item], Awaitable[None]]] = {
        "worktree": lambda item: _remove_worktree(item, force),
        "branch": _remove_branch,
        "artifacts": _remove_dir,
    }
    for kind in KINDS:
        for d in decisions:
            if not d.remove or d.item.kind != kind:
                continue
            try:
                await removers[kind](d.item)
                d.done = True
            except (AgentcmdError, OSError) as exc:
                d.error = exc.what if isinstance(exc, AgentcmdError) else str(exc)
    return decisions
