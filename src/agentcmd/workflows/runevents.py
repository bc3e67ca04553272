"""What happens to runs, told inside the app server process.

Parts of agentcmd learn of a run's moments in different places: a workflow
body asks a human a question (``step.approval``/``step.ask``), the app
server notices that a run ended. Others want to react without those parts
knowing them (notifications, say). This is the one small meeting point: a
publisher calls ``publish``; subscribers registered with ``subscribe`` are
called in order, and a subscriber that raises is logged and skipped, so
telling can never fail the code that tells.

Subscribers must be quick and must not block: a subscriber that does real
work (an HTTP call) queues it and returns.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Literal

log = logging.getLogger("agentcmd.runevents")

RunEventKind = Literal["finished", "failed", "cancelled", "waiting"]
RUN_EVENT_KINDS: tuple[str, ...] = ("finished", "failed", "cancelled", "waiting")


@dataclasses.dataclass(frozen=True)
class RunEvent:
    """One moment of one run. ``detail`` is JSON-safe (e.g. the waiting question's id and message)."""

    kind: RunEventKind
    run_id: str
    workflow_id: str | None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


Subscriber = Callable[[RunEvent], None]
_subscribers: list[Subscriber] = []


def subscribe(fn: Subscriber) -> Callable[[], None]:
    """Call ``fn`` for every event from now on; returns a function that unsubscribes."""
    _subscribers.append(fn)

    def unsubscribe() -> None:
        if fn in _subscribers:
            _subscribers.remove(fn)

    return unsubscribe


def publish(event: RunEvent) -> None:
    """Tell every subscriber; never raises."""
    for fn in list(_subscribers):
        try:
            fn(event)
        except Exception:  # a broken subscriber must not break the run that told it
            log.exception("run event subscriber %r failed on %s of run %s", fn, event.kind, event.run_id)
