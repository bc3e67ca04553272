"""The per-event size limit of ``POST /e/{key}`` (``httpedge.limits.EVENT_MAX``, Inngest's paid-plan maximum).

The request as a whole is bounded by the edge middleware before it is read;
one event inside a batch is measured here, and only when the request could
hold an event that large (most requests are far below it, so they cost
nothing extra).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from agentcmd.errors import AgentcmdError
from agentcmd.httpedge.limits import EVENT_MAX, describe

if TYPE_CHECKING:
    from agentcmd.engine.store.models import NewEvent


class EventTooLargeError(AgentcmdError):
    """An event (or a request of events) above the engine's size limit."""

    code = "too_large"
    http_status = 413
    fix_hint = "send smaller events: put large data in a file or a store and send its path or URL"


def check_event_sizes(events: Sequence[NewEvent], request_bytes: int) -> None:
    """Raise ``EventTooLargeError`` (413) naming the first event above ``EVENT_MAX``."""
    if 0 < request_bytes <= EVENT_MAX:
        return
    for i, event in enumerate(events):
        size = len(json.dumps(event.body, separators=(",", ":")).encode())
        if size > EVENT_MAX:
            raise EventTooLargeError(
                f"event {i} ({event.name}) is {size} bytes; one event may be at most {describe(EVENT_MAX)}",
                "put large data in a file or storage and send a reference to it in the event")
