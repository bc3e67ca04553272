"""The automatic workspaces cleanup: ``workspaces.prune_after`` applied by the app server.

Off unless the setting is given. Then a background task prunes, at start
and every ``workspaces.check_every``, what ``agentcmd workspaces prune
--older-than <prune_after>`` would (``workflows/cleanup.py``), never with
``--force``: items of unfinished runs or runs the engine cannot tell,
unmerged or unpushed branches and dirty worktrees stay. Git runs in
subprocesses through asyncio and directory walks and deletes in a thread,
so the loop serving runs is never blocked; a failed pass is logged and the
next one comes as planned. ``last`` keeps the latest pass's summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from agentcmd.config.workspaces import WorkspacesSettings
from agentcmd.workflows import cleanup
from agentcmd.workflows.context import Runtime

log = logging.getLogger("agentcmd.server.workspaces")


@dataclass
class Policy:
    """The running policy: its task and its latest pass."""

    task: asyncio.Task[None]
    passes: int = 0
    last: dict[str, Any] = field(default_factory=dict)


async def prune_once(runtime: Runtime, engine: cleanup.RunSource, older_than: float) -> dict[str, Any]:
    """One pass: the ``prune`` command's rules without force; returns what went and what stayed."""
    found = await cleanup.scan(runtime.data_dir, runtime.project_dir, engine)
    decisions = await cleanup.apply(cleanup.plan(found, older_than=older_than, force=False))
    removed = [d for d in decisions if d.done]
    failed = [d for d in decisions if d.error]
    for d in removed:
        log.info("workspaces: removed %s %s (%s)", d.item.kind, d.item.name, d.reason)
    for d in failed:
        log.warning("workspaces: could not remove %s %s: %s", d.item.kind, d.item.name, d.error)
    if found.engine_note:
        log.warning("workspaces: %s; items of runs whose status is unknown are kept", found.engine_note)
    return {"at": time.time(), "removed": [f"{d.item.kind} {d.item.name}" for d in removed],
            "failed": [f"{d.item.kind} {d.item.name}" for d in failed],
            "kept": sum(not d.remove for d in decisions), "engine_note": found.engine_note}


def start(runtime: Runtime, engine: cleanup.RunSource, settings: WorkspacesSettings | None = None) -> Policy | None:
    """Start the background task when ``workspaces.prune_after`` is set (call on the server's loop)."""
    if settings is None:
        from agentcmd.config import load_settings

        settings = load_settings().workspaces
    older_than = settings.prune_after_seconds
    if older_than is None:
        return None
    every = settings.check_every_seconds
    policy: Policy

    async def loop() -> None:
        while True:
            try:
                policy.last = await prune_once(runtime, engine, older_than)
            except asyncio.CancelledError:
                raise
            except Exception:   # a bug or a broken repository must not end the server, nor the next pass
                log.exception("workspaces: the automatic cleanup pass failed")
            policy.passes += 1
            await asyncio.sleep(every)

    policy = Policy(asyncio.get_running_loop().create_task(loop(), name="agentcmd-workspaces-policy"))
    log.info("workspaces: removing finished runs' worktrees, branches and artifacts %s after they end "
             "(checked every %s)", settings.prune_after, settings.check_every)
    return policy


async def stop(policy: Policy | None) -> None:
    if policy is None:
        return
    policy.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await policy.task
