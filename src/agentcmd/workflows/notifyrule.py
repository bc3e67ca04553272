"""``define_workflow(notify=...)``: a workflow's own notification rule, written next to its code.

The ``notifications`` setting names the targets (URLs are secrets: they never
go in code) and may hold a rule per workflow (``notifications.workflows``).
A workflow can carry the same rule itself::

    @define_workflow(id="deploy", notify={"events": ["failed", "waiting"], "targets": ["team"]})

``events`` (some of finished, failed, cancelled, waiting) and ``targets``
(names from ``notifications.targets``) narrow what its runs send, exactly as
a ``notifications.workflows.<id>`` rule does; either may be left out (all);
``notify=False`` silences the workflow (``"targets": []``). A rule in the
settings for the same workflow wins over the code's, whole (an operator can
always override what a workflow file says). A target the settings do not
define is never sent to; the app server warns of it when it starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from agentcmd.config.notifications import EVENTS
from agentcmd.errors import WorkflowDefinitionError

NotifyArg = Mapping[str, Sequence[str] | None] | bool | None
_KEYS = ("events", "targets")
_EXAMPLE = 'e.g. notify={"events": ["failed", "waiting"], "targets": ["team"]}, or notify=False to silence it'


@dataclasses.dataclass(frozen=True)
class NotifyRule:
    """Which events (None: all) to which targets (None: all the settings name; empty: none)."""

    events: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"events": None if self.events is None else list(self.events),
                "targets": None if self.targets is None else list(self.targets)}


def check(workflow_id: str, notify: NotifyArg) -> NotifyRule | None:
    """The checked rule of ``notify=`` (None when not given or True: the settings alone decide)."""
    if notify is None or notify is True:
        return None
    if notify is False:
        return NotifyRule(targets=())
    if not isinstance(notify, Mapping):
        raise WorkflowDefinitionError(f"workflow {workflow_id!r}: notify must be a dict or False, "
                                      f"got {type(notify).__name__}", _EXAMPLE)
    unknown = [str(k) for k in notify if k not in _KEYS]
    if unknown:
        raise WorkflowDefinitionError(f"workflow {workflow_id!r}: notify has unknown key(s) "
                                      f"{', '.join(map(repr, unknown))}", f"use 'events' and 'targets'; {_EXAMPLE}")
    events, targets = (_names(workflow_id, key, notify.get(key)) for key in _KEYS)
    bad = [e for e in events or () if e not in EVENTS]
    if bad:
        raise WorkflowDefinitionError(f"workflow {workflow_id!r}: notify names unknown event(s) "
                                      f"{', '.join(map(repr, bad))}", f"use some of {', '.join(EVENTS)}")
    return NotifyRule(events=events, targets=targets)


def _names(workflow_id: str, key: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise WorkflowDefinitionError(f"workflow {workflow_id!r}: notify[{key!r}] must be a list of names",
                                      _EXAMPLE)
    names = tuple(v.strip().lower() if key == "events" else v.strip() for v in value)
    return tuple(dict.fromkeys(names))
