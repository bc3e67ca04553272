"""Replaying a function's runs: ``POST /v1/functions/{id}/replay`` (the route is in ``api/functions.py``).

As Inngest's "replay" does, every run of the function created in a time
range (optionally only those with given statuses, e.g. ``["Failed"]``)
starts again as a *new* run with the same triggering event(s): same
internal event id, same event bodies, so ``GET /v1/events/{id}/runs`` lists
the original and the replay side by side. The old runs are left untouched.

Why runs are created directly instead of sending the events again (what
the dashboard's "rerun" does): a re-sent event would start every function
it matches, not only this one, and a fresh event would lose the link to the
original. Replayed runs skip the event-time flow control (debounce, batch,
rate limit, idempotency, singleton): that already decided once, and the
point of a replay is to run again. Call-time flow control still holds:
concurrency limits and a pause park replayed runs like any other.

Selection and creation are one write transaction, so a replay is all or
nothing and two concurrent replays cannot interleave half-way. Each new run
names the run it replays in ``runs.replay_of`` (migration 0006), which the
dashboard shows as a "replay" badge and a link; ``replay_runs`` is the one
implementation behind both the REST route and the dashboard's Replay button.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sqlite3
from typing import TYPE_CHECKING, Any

from agentcmd.engine.store import queries, runs
from agentcmd.engine.store.models import RunSpec, RunStatus
from agentcmd.errors import InputError

if TYPE_CHECKING:
    from agentcmd.engine.flow import RunSpecs
    from agentcmd.engine.functions import Function
    from agentcmd.engine.store import Store

MAX_RANGE = datetime.timedelta(days=31)
MAX_RUNS = 10_000      # one transaction; a wider replay is split by the caller into smaller ranges


class ReplayInputError(InputError):
    """A replay request the engine cannot act on (bad range, status or body)."""

    code = "invalid_replay"
    http_status = 400
    fix_hint = "send a range of at most 31 days ('from' before 'to') and known statuses (docs/flow-control.md)"


@dataclasses.dataclass(frozen=True)
class ReplayRequest:
    """A validated request: the range in epoch ms (both ends inclusive) and the statuses (empty: any)."""

    from_ms: int
    to_ms: int
    statuses: tuple[str, ...]


def _parse_time(body: dict[str, Any], field: str) -> datetime.datetime:
    raw = body.get(field)
    if not isinstance(raw, str) or not raw:
        raise ReplayInputError(f"replay needs {field!r}, an RFC 3339 time with a zone (got {raw!r})",
                               'send e.g. {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}')
    try:
        value = datetime.datetime.fromisoformat(raw)
    except ValueError:
        raise ReplayInputError(f"{field!r} is not an RFC 3339 time: {raw!r}",
                               "use a form like 2026-11-01T12:00:00Z or 2026-11-01T12:00:00+01:00") from None
    if value.tzinfo is None:
        raise ReplayInputError(f"{field!r} has no time zone: {raw!r}",
                               "add 'Z' for UTC or an offset such as +01:00")
    return value


def parse_request(body: Any) -> ReplayRequest:
    """Validate the JSON body; raises ``ReplayInputError`` (400) with a hint for each mistake."""
    if not isinstance(body, dict):
        raise ReplayInputError("replay needs a JSON object body",
                               'send {"from": RFC3339, "to": RFC3339, "status": ["Failed"]} ("status" optional)')
    start, end = _parse_time(body, "from"), _parse_time(body, "to")
    if start > end:
        raise ReplayInputError(f"'from' ({body['from']}) is after 'to' ({body['to']})", "swap the two times")
    if end - start > MAX_RANGE:
        raise ReplayInputError(f"the range {body['from']} .. {body['to']} is longer than 31 days",
                               "replay in several requests of at most 31 days each")
    raw_status = body.get("status")
    if raw_status is None:
        raw_status = []
    if isinstance(raw_status, str):
        raw_status = [raw_status]
    if not isinstance(raw_status, list):
        raise ReplayInputError("'status' must be a list of run statuses", 'send e.g. "status": ["Failed"]')
    by_lower = {s.value.lower(): s.value for s in RunStatus}
    statuses = []
    for s in raw_status:
        if not isinstance(s, str) or s.lower() not in by_lower:
            raise ReplayInputError(f"unknown run status {s!r}", "use any of " + ", ".join(by_lower.values()))
        statuses.append(by_lower[s.lower()])
    return ReplayRequest(int(start.timestamp() * 1000), int(end.timestamp() * 1000), tuple(statuses))


def _too_many(slug: str) -> ReplayInputError:
    return ReplayInputError(f"more than {MAX_RUNS} runs of {slug} match this range",
                            "replay a narrower range (several requests)")


def runs_to_replay_txn(conn: sqlite3.Connection, slug: str, req: ReplayRequest) -> list[tuple[str, str, str]]:
    """(run_id, event_id, events json) of the function's runs created in the range, oldest first."""
    rows = runs.runs_in_range_txn(conn, slug, req.from_ms, req.to_ms, req.statuses, MAX_RUNS + 1)
    if len(rows) > MAX_RUNS:
        raise _too_many(slug)
    return rows


def count_to_replay_txn(conn: sqlite3.Connection, slug: str, req: ReplayRequest) -> int:
    """How many runs a replay of ``req`` would start now (the dashboard's preview); raises over the cap."""
    n = queries.replay_count(conn, slug, req.from_ms, req.to_ms, req.statuses, MAX_RUNS)
    if n > MAX_RUNS:
        raise _too_many(slug)
    return n


async def replay_runs(store: Store, dispatcher: RunSpecs, fn: Function, req: ReplayRequest,
                      now: int) -> list[tuple[str, str]]:
    """Start the replays; (new run id, original run id) pairs, oldest original first.

    The one implementation behind the REST route and the dashboard's Replay
    button (both through ``engine.commands``, which wakes the worker). Each
    new run records the run it replays in ``runs.replay_of`` in the same
    transaction that creates it.
    """

    def txn(conn: sqlite3.Connection) -> list[tuple[str, str]]:
        specs: list[RunSpec] = []
        pairs: list[tuple[str, str]] = []
        for old, event_id, events_json in runs_to_replay_txn(conn, fn.slug, req):
            events = json.loads(events_json)
            if not isinstance(events, list) or not events:
                continue
            # A replay is a new top-level run: no invoke parent to report back to.
            spec = dataclasses.replace(dispatcher.run_spec(fn, events, event_id), parent=None)
            specs.append(spec)
            pairs.append((spec.run_id, old))
        runs.create_runs_txn(conn, specs, now, None)
        runs.set_replay_of_txn(conn, pairs)
        return pairs

    return await store.write(txn)
