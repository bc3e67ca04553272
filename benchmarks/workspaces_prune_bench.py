"""How long a workspaces cleanup pass takes, and how late it makes the app server's event loop.

    .venv/bin/python benchmarks/workspaces_prune_bench.py [--runs 30] [--files 500]

Makes a git repository of ``--files`` files (2 KB each), then for each of
``--runs`` finished runs a worktree on its ``agentcmd/<run>`` branch and an
artifacts directory of 50 files, and runs one pass of the automatic policy
(``server/workspacepolicy.py``'s ``prune_once``, the code behind
``workspaces.prune_after``; ``agentcmd workspaces prune`` runs the same
rules) with every run reported Failed long ago. Meanwhile a coroutine on the
same loop sleeps 10 ms at a time and records how late it wakes: that is what
a pass costs the requests the app server serves. Prints the items removed,
the pass's time, and the lateness p50/p99/max.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from agentcmd.server.workspacepolicy import prune_once
from agentcmd.workflows.context import Runtime

_ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=_ENV)


def build(root: Path, runs: int, files: int) -> tuple[Path, Path]:
    repo, data = root / "repo", root / "data"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i in range(files):
        (repo / f"f{i}.txt").write_text("x" * 2000)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "initial")
    for i in range(runs):
        key = f"01bench{i:05d}"
        git(repo, "worktree", "add", "-q", "-b", f"agentcmd/{key}", str(data / "worktrees" / key))
        artifacts = data / "artifacts" / key.upper()
        artifacts.mkdir(parents=True)
        for j in range(50):
            (artifacts / f"a{j}.txt").write_text("y" * 1000)
    return repo, data


class FinishedRuns:
    """The engine's answers for runs that all failed long ago (none in flight)."""

    async def get_run(self, run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "status": "Failed", "ended_at": "2026-01-01T00:00:00Z"}

    async def list_runs(self, **_: Any) -> tuple[list[dict[str, Any]], str | None]:
        return [], None

    async def run_steps(self, run_id: str) -> list[dict[str, Any]]:
        return []


async def measure(repo: Path, data: Path) -> None:
    lateness: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lateness.append(time.perf_counter() - start - 0.01)

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    result = await prune_once(Runtime(project_dir=repo, data_dir=data), FinishedRuns(), 0.0)
    took = time.perf_counter() - started
    done.set()
    await task
    lateness.sort()
    ms = [lateness[int(len(lateness) * q)] * 1000 for q in (0.5, 0.99)] + [lateness[-1] * 1000]
    print(f"removed {len(result['removed'])} items ({len(result['failed'])} failed) in {took:.2f} s; "
          f"event loop lateness p50 {ms[0]:.1f} ms, p99 {ms[1]:.1f} ms, max {ms[2]:.1f} ms "
          f"over {len(lateness)} ticks; load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--files", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentcmd-workspaces-bench-") as tmp:
        repo, data = build(Path(tmp), args.runs, args.files)
        asyncio.run(measure(repo, data))


if __name__ == "__main__":
    main()
