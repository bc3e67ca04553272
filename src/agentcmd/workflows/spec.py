"""A workflow's checked definition: what ``define_workflow`` was given, as plain data.

Its own module so the step API (``steps.py``) can read a workflow's
settings without importing ``define.py``, which builds workflows out of
the step API: the two would otherwise import each other.
"""

from __future__ import annotations

import dataclasses

from agentcmd.workflows.notifyrule import NotifyRule
from agentcmd.workflows.schema import InputSchema
from agentcmd.workflows.triggers import EventTrigger


@dataclasses.dataclass(frozen=True)
class WorkflowSpec:
    """What ``define_workflow`` was given, checked."""

    id: str
    name: str
    phases: tuple[str, ...]
    trigger: str
    retries: int | None = None
    timeout: str | None = None
    concurrency: int | None = None
    workspace: str = "stay"
    cancel_on: tuple[str, ...] = ()
    description: str = ""
    input_schema: InputSchema | None = None
    max_cost_usd: float | None = None
    cron: tuple[str, ...] = ()
    timezone: str | None = None
    triggers: tuple[EventTrigger, ...] = ()   # on_event(...): more events that start runs (workflows/triggers.py)
    notify: NotifyRule | None = None          # notify=...: its notification rule (workflows/notifyrule.py)
