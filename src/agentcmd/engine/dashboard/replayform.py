"""The Replay form on a function's page: its fields, their defaults, and the request they make.

A browser's ``datetime-local`` input sends a time without a zone
(``2026-11-25T14:00``); the form is labelled UTC, so such a time is read as
UTC. The values then go through ``flow.replay.parse_request``, the REST
route's own validation, so the form refuses exactly what
``POST /v1/functions/{id}/replay`` refuses, with the same words (from after
to, a range over 31 days, an unknown status).

Replaying is two steps without JavaScript: "Preview" (a GET of the
function page with the fields and ``preview=1``) counts the runs that
match; "Replay N runs" (a POST with the CSRF token) starts them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentcmd.engine.flow.replay import ReplayInputError, ReplayRequest, parse_request
from agentcmd.engine.store.queries.models import rfc3339

DEFAULT_RANGE = dt.timedelta(hours=24)
_ZONE = re.compile(r"(Z|[+-]\d\d:?\d\d)$", re.IGNORECASE)
STATUS_CHOICES = ("Failed", "Cancelled", "Completed", "Running", "Queued")  # "" (any) comes first on the form


@dataclass(frozen=True)
class ReplayForm:
    """What the form shows and sends: two times (as typed) and an optional status."""

    start: str
    end: str
    status: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"from": self.start, "to": self.end, "status": self.status or None}

    def query(self) -> dict[str, str]:
        return {"from": self.start, "to": self.end, "status": self.status}


def _minute(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M")


def defaults(now_ms: int) -> ReplayForm:
    """The last 24 hours, to the next whole minute (so runs of the current minute are in range)."""
    now = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)
    end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return ReplayForm(_minute(end - DEFAULT_RANGE), _minute(end))


def from_values(values: Mapping[str, str], now_ms: int) -> ReplayForm:
    """The form from a query string or a posted form; a field that is absent gets its default."""
    base = defaults(now_ms)
    return ReplayForm(values.get("from", base.start).strip(), values.get("to", base.end).strip(),
                      values.get("status", "").strip())


def _rfc3339(value: str) -> str:
    """A time as typed, with 'Z' added when it has no zone (the form says UTC)."""
    if value and "T" in value and not _ZONE.search(value):
        return value + "Z"
    return value


def to_request(form: ReplayForm) -> ReplayRequest:
    """The replay request; raises ``ReplayInputError`` (what + fix) exactly as the REST route does."""
    return parse_request({"from": _rfc3339(form.start), "to": _rfc3339(form.end),
                          "status": [form.status] if form.status else []})


def describe_selection(request: ReplayRequest) -> str:
    """'was created between A and B with status Failed': the words of the "no run matches" error."""
    status = f" with status {' or '.join(request.statuses)}" if request.statuses else ""
    return f"was created between {rfc3339(request.from_ms)} and {rfc3339(request.to_ms)}{status}"


def nothing_to_replay(slug: str, request: ReplayRequest) -> ReplayInputError:
    """The form's error for a range without a matching run (the REST route answers 0 runs instead)."""
    return ReplayInputError(f"no run of {slug} {describe_selection(request)}",
                            "widen the time range or pick another status")
