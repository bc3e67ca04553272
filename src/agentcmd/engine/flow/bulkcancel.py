"""Bulk cancellation: every Queued or Running run of one function, optionally in a time range.

Shaped like Inngest's ``POST /v1/cancellations`` (``app_id``,
``function_id``, ``started_after``, ``started_before``); the route is in
``api/cancellations.py``, the dashboard's "Cancel running runs" form and
``agentcmd functions cancel`` go through the same ``engine.commands``
method. A run is in the range when it was *created* (scheduled) in it,
both ends inclusive at millisecond precision: a Queued run has not started
yet, and Inngest counts it too. A missing end is open.

Selection and the cancels are one write transaction, and each run is
cancelled by ``store.runs.cancel_run_txn``, the single cancel's own
function: same history entry, same ``inngest/function.cancelled`` event,
same queue items and waits dropped. A bulk-cancelled run is
indistinguishable from one cancelled alone, and an app watching its run
(``workflows/steps.py``) stops the step's process group the same way.

Inngest's optional ``if`` expression (match on the triggering event) is
refused with a 400 that says so: narrow by time range instead.
"""

from __future__ import annotations

import dataclasses
import datetime
import sqlite3
from typing import TYPE_CHECKING, Any

from agentcmd.engine.store import runs
from agentcmd.engine.store.models import RunStatus
from agentcmd.errors import InputError

if TYPE_CHECKING:
    from agentcmd.engine.store import Store

MAX_RUNS = 10_000          # one transaction; more is refused (cancel narrower ranges)
_OPEN_END = 2**62          # "no upper bound" in epoch ms
ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


class CancelInputError(InputError):
    """A bulk cancellation the engine cannot act on (bad body, range or too many runs)."""

    code = "invalid_cancellation"
    http_status = 400
    fix_hint = ('send {"app_id": ..., "function_id": ..., "started_after": RFC3339, "started_before": RFC3339} '
                "(docs/architecture.md)")


@dataclasses.dataclass(frozen=True)
class CancelRequest:
    """The range in epoch ms, both ends inclusive (None: open)."""

    after_ms: int | None = None
    before_ms: int | None = None


def _time(body: dict[str, Any], field: str) -> int | None:
    raw = body.get(field)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise CancelInputError(f"{field!r} must be an RFC 3339 time string (got {raw!r})",
                               f'send e.g. "{field}": "2026-11-01T12:00:00Z"')
    try:
        value = datetime.datetime.fromisoformat(raw)
    except ValueError:
        raise CancelInputError(f"{field!r} is not an RFC 3339 time: {raw!r}",
                               "use a form like 2026-11-01T12:00:00Z or 2026-11-01T12:00:00+01:00") from None
    if value.tzinfo is None:
        raise CancelInputError(f"{field!r} has no time zone: {raw!r}", "add 'Z' for UTC or an offset such as +01:00")
    return int(value.timestamp() * 1000)


def parse_range(body: dict[str, Any]) -> CancelRequest:
    """``started_after`` / ``started_before`` (both optional) -> a request; raises ``CancelInputError``."""
    if body.get("if") not in (None, ""):
        raise CancelInputError("bulk cancellation does not support an 'if' expression on this engine",
                               "leave 'if' out and narrow the runs with started_after / started_before")
    after, before = _time(body, "started_after"), _time(body, "started_before")
    if after is not None and before is not None and after > before:
        raise CancelInputError(f"started_after ({body['started_after']}) is after started_before "
                               f"({body['started_before']})", "swap the two times")
    return CancelRequest(after, before)


def parse_body(body: Any) -> tuple[str, str, CancelRequest]:
    """The JSON body of ``POST /v1/cancellations`` -> (app_id, function_id, range)."""
    if not isinstance(body, dict):
        raise CancelInputError("a cancellation needs a JSON object body")
    ids = []
    for field in ("app_id", "function_id"):
        value = body.get(field)
        if not isinstance(value, str) or not value:
            raise CancelInputError(f"a cancellation needs {field!r}, a non-empty string (got {value!r})")
        ids.append(value)
    return ids[0], ids[1], parse_range(body)


def cancel_txn(conn: sqlite3.Connection, slug: str, req: CancelRequest, now: int, reason: str) -> list[str]:
    """Cancel the function's Queued/Running runs in the range, oldest first; their ids."""
    rows = runs.runs_in_range_txn(conn, slug, req.after_ms if req.after_ms is not None else 0,
                                  req.before_ms if req.before_ms is not None else _OPEN_END, ACTIVE, MAX_RUNS + 1)
    if len(rows) > MAX_RUNS:
        raise CancelInputError(f"more than {MAX_RUNS} running or queued runs of {slug} match",
                               "cancel a narrower time range (several requests)")
    return [run_id for run_id, _, _ in rows if runs.cancel_run_txn(conn, run_id, now, reason)]


async def cancel_runs(store: Store, slug: str, req: CancelRequest, now: int, reason: str) -> list[str]:
    """``cancel_txn`` in one write transaction: all the runs are cancelled, or (on an error) none."""
    return await store.write(lambda c: cancel_txn(c, slug, req, now, reason))
