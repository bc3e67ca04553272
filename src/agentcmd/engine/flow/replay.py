"""Replaying a function's runs: ``POST /v1/functions/{id}/replay``.

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

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.api.errors import error_response, json_body, unauthorized
from agentcmd.engine.store import writes
from agentcmd.engine.store.models import RunSpec, RunStatus
from agentcmd.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from agentcmd.engine.app import Engine
    from agentcmd.engine.registry import Function

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


def _selection(slug: str, req: ReplayRequest) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) picking the function's runs in the range and statuses."""
    where = "function_slug=? AND created_at BETWEEN ? AND ?"
    args: list[Any] = [slug, req.from_ms, req.to_ms]
    if req.statuses:
        where += f" AND status IN ({','.join('?' * len(req.statuses))})"
        args += req.statuses
    return where, args


def _too_many(slug: str) -> ReplayInputError:
    return ReplayInputError(f"more than {MAX_RUNS} runs of {slug} match this range",
                            "replay a narrower range (several requests)")


def runs_to_replay_txn(conn: sqlite3.Connection, slug: str, req: ReplayRequest) -> list[tuple[str, str, str]]:
    """(run_id, event_id, events json) of the function's runs created in the range, oldest first."""
    where, args = _selection(slug, req)
    rows = conn.execute(f"SELECT run_id, event_id, events FROM runs WHERE {where} ORDER BY created_at, run_id "
                        "LIMIT ?", (*args, MAX_RUNS + 1)).fetchall()
    if len(rows) > MAX_RUNS:
        raise _too_many(slug)
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def count_to_replay_txn(conn: sqlite3.Connection, slug: str, req: ReplayRequest) -> int:
    """How many runs a replay of ``req`` would start now (the dashboard's preview); raises over the cap."""
    where, args = _selection(slug, req)
    n = int(conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE {where} LIMIT ?)",
                         (*args, MAX_RUNS + 1)).fetchone()[0])
    if n > MAX_RUNS:
        raise _too_many(slug)
    return n


def replay_of_txn(conn: sqlite3.Connection, run_id: str) -> str | None:
    """The run that ``run_id`` replays (migration 0006), or None for a run that is not a replay."""
    row = conn.execute("SELECT replay_of FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return str(row[0]) if row and row[0] else None


def find_function(engine: Engine, ref: str) -> Function | None:
    """A function by its slug (``<app>-<fn>``) or its uuid."""
    return engine.registry.get(ref) or next(
        (f for f in engine.registry.functions.values() if f.uuid == ref), None)


async def replay_runs(engine: Engine, fn: Function, req: ReplayRequest) -> list[tuple[str, str]]:
    """Start the replays; (new run id, original run id) pairs, oldest original first.

    The one implementation behind the REST route and the dashboard's Replay
    button. Each new run records the run it replays in ``runs.replay_of``
    in the same transaction that creates it.
    """
    now = engine.clock()

    def txn(conn: sqlite3.Connection) -> list[tuple[str, str]]:
        specs: list[RunSpec] = []
        pairs: list[tuple[str, str]] = []
        for old, event_id, events_json in runs_to_replay_txn(conn, fn.slug, req):
            events = json.loads(events_json)
            if not isinstance(events, list) or not events:
                continue
            # A replay is a new top-level run: no invoke parent to report back to.
            spec = dataclasses.replace(engine.dispatcher.run_spec(fn, events, event_id), parent=None)
            specs.append(spec)
            pairs.append((spec.run_id, old))
        writes.create_runs_txn(conn, specs, now, None)
        conn.executemany("UPDATE runs SET replay_of=? WHERE run_id=?", [(old, new) for new, old in pairs])
        return pairs

    pairs = await engine.store.write(txn)
    if pairs:
        engine.worker.wake()
    return pairs


def routes(engine: Engine) -> list[Route]:
    """The REST route; the function is named by its slug (``<app>-<fn>``) or its uuid."""

    async def replay(request: Request) -> Response:
        if not engine.authorized(request):
            return error_response(unauthorized("missing or wrong bearer token"))
        ref = request.path_params["function_id"]
        fn = find_function(engine, ref)
        if fn is None:
            return error_response(NotFoundError(f"no function {ref!r}",
                                                "list functions with GET /v1/functions (use its slug or id)"))
        try:
            req = parse_request(await json_body(request))
        except InputError as exc:
            return error_response(exc, 400)
        try:
            pairs = await replay_runs(engine, fn, req)
        except ReplayInputError as exc:
            return error_response(exc)
        return JSONResponse({"data": {"replayed": len(pairs), "run_ids": [new for new, _ in pairs]}})

    return [Route("/v1/functions/{function_id}/replay", replay, methods=["POST"])]
