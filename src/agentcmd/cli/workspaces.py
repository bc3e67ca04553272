"""``agentcmd workspaces list|prune``: the worktrees, run branches and artifacts runs left behind.

The rules are ``agentcmd.workflows.cleanup``'s (the app server's automatic
policy uses the same); this module asks the engine (its REST API, the URL
and bearer of ``agentcmd/endpoint.py``) and prints. Only Typer is imported
at module level.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from agentcmd.workflows.cleanup import Decision, Item, Kind, Scan

app = typer.Typer(help="List and prune the worktrees, run branches and artifacts of finished runs.",
                  no_args_is_help=True)

_PROJECT_HELP = ("The git repository whose agentcmd/<run> branches to look at (default: the project_dir "
                 "setting, else the current directory).")
_BASE_HELP = ("Count a branch's commits as merged when they are on REF (default: on any branch or "
              "remote-tracking branch other than agentcmd/* ones).")
_ENGINE_HELP = "The engine's URL (default: AGENTCMD_ENGINE_URL, INNGEST_BASE_URL or the engine port)."


def _scan(project: Path | None, base: str | None, engine_url: str | None, kinds: tuple[Kind, ...]) -> Scan:
    from agentcmd.config import load_settings
    from agentcmd.endpoint import resolve_engine_endpoint
    from agentcmd.errors import InputError
    from agentcmd.server.engine import EngineRestClient
    from agentcmd.workflows import cleanup
    from agentcmd.workflows.gitops import GitError, check_revision

    if base is not None:
        try:
            check_revision(base, "--base")
        except GitError:
            raise InputError(f"--base {base!r} is not a revision: it is empty, starts with '-' or holds a "
                             "control character", "name a branch, tag or commit, e.g. --base main") from None
    settings = load_settings()
    project_dir = (project or settings.resolved_project_dir).resolve()
    endpoint = resolve_engine_endpoint(engine_url)

    async def go() -> Scan:
        engine = EngineRestClient(endpoint.url, endpoint.signing_key)
        try:
            return await cleanup.scan(settings.resolved_data_dir, project_dir, engine, base=base, kinds=kinds)
        finally:
            await engine.aclose()

    found = asyncio.run(go())
    if found.engine_note:
        from agentcmd.cli._console import warn

        warn(f"{found.engine_note}; run statuses are unknown (items of such runs are kept unless --force)")
    return found


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _age(item: Item, now: float) -> str:
    from agentcmd.workflows.cleanup import age_text

    last = item.last_used()
    return "-" if last is None else age_text(max(0.0, now - last))


def _git_state(item: Item) -> str:
    if item.kind == "branch":
        merged = "?" if item.unmerged is None else ("merged" if item.unmerged == 0 else f"{item.unmerged} unmerged")
        pushed = f"pushed to {item.upstream}" if item.pushed else \
            ("no upstream" if item.upstream is None else f"{item.unpushed} unpushed")
        return f"{merged}, {pushed}"
    if item.kind == "worktree":
        return "dirty" if item.dirty else ("-" if item.dirty is None else "clean")
    return "-"


def _kinds(worktrees: bool, branches: bool, artifacts: bool) -> tuple[Kind, ...]:
    from agentcmd.workflows.cleanup import KINDS

    chosen = tuple(k for k, on in zip(KINDS, (worktrees, branches, artifacts), strict=True) if on)
    return chosen or KINDS


def _print_json(data: Any) -> None:
    from agentcmd.cli._console import print_json

    print_json(data)


@app.command("list")
def list_(
    worktrees: bool = typer.Option(False, "--worktrees", help="Only worktrees (combine with the others)."),
    branches: bool = typer.Option(False, "--branches", help="Only agentcmd/<run> branches."),
    artifacts: bool = typer.Option(False, "--artifacts", help="Only artifact directories."),
    project: Path | None = typer.Option(None, "--project", help=_PROJECT_HELP),
    base: str | None = typer.Option(None, "--base", metavar="REF", help=_BASE_HELP),
    engine_url: str | None = typer.Option(None, "--engine-url", help=_ENGINE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: one object per item."),
) -> None:
    """List every worktree (<data dir>/worktrees/<run>), run branch (agentcmd/<run>) and artifact
    directory (<data dir>/artifacts/<run>) with its run, the run's status and end time, age
    (since the run ended or the item last changed), size, a worktree's uncommitted changes, and
    whether a branch has commits not on its base and is pushed. With the engine unreachable the
    items are still listed, with status unknown."""
    found = _scan(project, base, engine_url, _kinds(worktrees, branches, artifacts))
    if as_json:
        _print_json([item.to_json() for item in found.items])
        return
    if not found.items:
        typer.echo("no worktrees, run branches or artifacts")
        return
    now = time.time()
    rows = [("KIND", "NAME", "RUN", "STATUS", "ENDED", "AGE", "SIZE", "GIT")]
    for item in found.items:
        rows.append((item.kind, item.name, item.run_id or "-", item.status, item.ended_at or "-",
                     _age(item, now), _size(item.bytes), _git_state(item)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _line(d: Decision, dry_run: bool) -> str:
    item = d.item
    what = f"{item.kind} {item.name}" + (f" ({item.path})" if item.path and item.kind != "branch" else "")
    if not d.remove:
        return f"kept {what}: {d.reason}"
    if d.error:
        return f"failed {what}: {d.error}"
    return f"{'would remove' if dry_run else 'removed'} {what}: {d.reason}"


@app.command("prune")
def prune(
    older_than: str = typer.Option("7d", "--older-than", help="Only items whose run ended (and that last "
                                   "changed) longer ago than this: 7d, 12h, 30m, 0 for all."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be removed and why the rest is "
                                 "kept; remove nothing."),
    force: bool = typer.Option(False, "--force", help="Also remove unmerged or unpushed branches, worktrees "
                               "with uncommitted changes, and items of runs whose status is unknown. Items of "
                               "runs that have not finished are never removed."),
    worktrees: bool = typer.Option(False, "--worktrees", help="Only worktrees (combine with the others)."),
    branches: bool = typer.Option(False, "--branches", help="Only agentcmd/<run> branches."),
    artifacts: bool = typer.Option(False, "--artifacts", help="Only artifact directories."),
    project: Path | None = typer.Option(None, "--project", help=_PROJECT_HELP),
    base: str | None = typer.Option(None, "--base", metavar="REF", help=_BASE_HELP),
    engine_url: str | None = typer.Option(None, "--engine-url", help=_ENGINE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: every item with its action and reason."),
) -> None:
    """Remove the worktrees, run branches and artifacts of finished runs (Completed, Failed,
    Cancelled) older than --older-than. Worktrees go with 'git worktree remove' (then 'git worktree
    prune'), branches with 'git branch -D' after the checks, artifacts with their directory.
    Kept unless --force: a branch with commits not on its base or not pushed to its upstream, a
    worktree with uncommitted changes, an item whose run the engine cannot tell. Never removed: items
    of running or waiting runs, a worktree a resumed run works in, names agentcmd does not make.
    Each kept item is printed with the reason. Exit 1 if a removal failed."""
    from agentcmd.workflows import cleanup
    from agentcmd.workflows.durations import parse_duration

    spelled: str | float = float(older_than) if older_than.strip().isdigit() else older_than  # "0": seconds
    cutoff = parse_duration(spelled, "--older-than").total_seconds()
    found = _scan(project, base, engine_url, _kinds(worktrees, branches, artifacts))
    decisions = cleanup.plan(found, older_than=cutoff, force=force)
    if not dry_run:
        asyncio.run(cleanup.apply(decisions, force=force))
    if as_json:
        _print_json([d.to_json() for d in decisions])
    else:
        for d in decisions:
            typer.echo(_line(d, dry_run))
        going = [d for d in decisions if d.remove and not d.error]
        freed = sum(d.item.bytes or 0 for d in going)
        verb = "would be removed" if dry_run else "removed"
        typer.echo(f"{len(going)} item(s) {verb} ({_size(freed)}), {sum(not d.remove for d in decisions)} kept")
    if any(d.error for d in decisions):
        raise typer.Exit(1)
