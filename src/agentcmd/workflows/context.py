"""What a workflow body sees as ``ctx``, and the runtime the app server binds.

``Runtime`` is where the app server puts process-wide facts (the project
directory, the data directory, how to ask the engine about a run). A
workflow served by someone else's app (plain ``inngest.fast_api.serve``)
gets a default runtime from the settings, so the DSL works there too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BOOT_ID_ENV = "AGENTCMD_BOOT_ID"
"""Set by the supervisor for its children: the ``boot_id`` they share (one supervisor's life)."""

RunStatusProbe = Callable[[str], Awaitable[str | None]]
"""``probe(run_id) -> status`` ("Running", "Cancelled", ...) or None when unknown."""


@dataclasses.dataclass
class Runtime:
    """Process-wide facts for running workflow bodies."""

    project_dir: Path
    data_dir: Path
    run_status: RunStatusProbe | None = None
    cancel_poll_seconds: float = 1.0
    boot_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    """This app server's life: a step record left ``running`` by another one was interrupted."""

    @classmethod
    def from_settings(cls, project_dir: Path | None = None) -> Runtime:
        from agentcmd.config import load_settings

        settings = load_settings()
        project = (project_dir or settings.resolved_project_dir).resolve()
        runtime = cls(project_dir=project, data_dir=settings.resolved_data_dir)
        # One life shared by the processes one supervisor runs (the app server and its connect
        # worker, docs/running.md "Workers"): a step the worker runs is not "interrupted" to the app.
        runtime.boot_id = os.environ.get(BOOT_ID_ENV, "").strip() or runtime.boot_id
        return runtime


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    """Bind the runtime for this process (the app server calls this once)."""
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_settings()
    return _runtime


@dataclasses.dataclass(frozen=True)
class WorkflowContext:
    """The ``ctx`` argument of a workflow body.

    ``input`` is the trigger event's data; ``project_dir`` the project the
    app serves; ``workdir`` where this run works (the project, or its git
    worktree with ``workspace="worktree"``) and the default ``cwd`` of steps.
    """

    workflow_id: str
    run_id: str
    input: dict[str, Any]
    event: dict[str, Any]
    attempt: int
    project_dir: Path
    workdir: Path
    data_dir: Path
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    branch: str | None = None
