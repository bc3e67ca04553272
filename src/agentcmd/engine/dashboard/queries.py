"""The dashboard's reads: the engine's ``store/queries.py`` plus what only a UI needs.

One read path (CONVENTIONS habit 15): a run, its steps and history, an
event, the runs it started, functions and apps come from
``agentcmd.engine.store.queries``, the same functions the REST API answers
with, so a JSON twin and ``GET /v1/runs/{id}`` cannot disagree. This module
adds, as plain ``conn`` functions in the same style, the queries REST does
not have: the runs list with a time filter and display names, runs per
status, an event list with run counts, and what a run is waiting on (sleeps,
retries, waits for events, with their deadlines).

Every list is keyset-paged in SQL (``run_id < :before ORDER BY run_id DESC
LIMIT n+1``): run and event ids are ULIDs, so id order is time order and
page N costs the same as page 1 however many runs exist; nothing loads a
whole table. ``SqliteDashboardReader`` runs each page's queries in one
``read`` call (one hop to a read connection).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from agentcmd.engine.dashboard import flowstate
from agentcmd.engine.dashboard.reader import (
    AppRow,
    ErrorInfo,
    EventRow,
    FunctionDetail,
    FunctionRow,
    HistoryRow,
    Page,
    RunDetail,
    RunFilter,
    RunSummary,
    SkipRow,
    StepRow,
    WaitRow,
    parse_rfc3339,
)
from agentcmd.engine.flow.replay import ReplayRequest, count_to_replay_txn
from agentcmd.engine.store import queries as store_queries
from agentcmd.engine.store import waits

T = TypeVar("T")
MAX_LIMIT = 200
RECENT_RUNS = 10  # on a function's page


class ReadsSQLite(Protocol):
    """The read side of the engine's store (``HistoryReader``)."""

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...


# -- queries the REST API does not have --------------------------------------------------

_RUN_COLS = ("r.run_id, r.function_slug, COALESCE(f.name, r.function_slug), r.app_id, r.event_id, "
             "COALESCE(e.name, ''), r.status, r.attempt, r.created_at, r.started_at, r.ended_at")
# What the runs list adds per run: the run it replays, and flow control holding it (flowstate.py).
_FLOW_COLS = (f"r.replay_of, {flowstate.WAITING_SQL}, {flowstate.DELAYED_SQL}, f.config, "
              "r.wait_since, r.app_id, r.wait_url, r.wait_reason")
_RUN_FROM = ("runs r LEFT JOIN functions f ON f.slug = r.function_slug "
             "LEFT JOIN events e ON e.internal_id = r.event_id")


def _run_where(filt: RunFilter, with_status: bool) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if with_status and filt.status:
        where.append("r.status = ?")
        args.append(filt.status)
    if filt.function:
        where.append("r.function_slug = ?")
        args.append(filt.function)
    if filt.since is not None:
        where.append("r.created_at >= ?")
        args.append(filt.since)
    if filt.until is not None:
        where.append("r.created_at < ?")
        args.append(filt.until)
    return where, args


def _where(parts: list[str]) -> str:
    return f"WHERE {' AND '.join(parts)}" if parts else ""


def list_runs(conn: sqlite3.Connection, filt: RunFilter, before: str | None, limit: int) -> Page[RunSummary]:
    """Newest first, ``limit`` rows from ``before`` (exclusive); one indexed range scan."""
    limit = max(1, min(limit, MAX_LIMIT))
    where, args = _run_where(filt, with_status=True)
    if before:
        where.append("r.run_id < ?")
        args.append(before)
    rows = conn.execute(f"SELECT {_RUN_COLS}, {_FLOW_COLS} FROM {_RUN_FROM} {_where(where)} "
                        "ORDER BY r.run_id DESC LIMIT ?", (*args, limit + 1)).fetchall()
    now = int(time.time() * 1000)
    items = [_summary_row(row, now) for row in rows[:limit]]
    return Page(items, items[-1].run_id if len(rows) > limit else None)


def _summary_row(row: tuple[Any, ...], now: int) -> RunSummary:
    """A ``_RUN_COLS, _FLOW_COLS`` row."""
    app = waits.waiting_for_app(row[6], row[16], row[15], row[17], row[18])
    waiting = flowstate.app_waiting(app) or flowstate.run_waiting(row[12], row[13], row[6], row[14], now)
    return RunSummary(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
                      row[11], waiting, app)


def count_runs(conn: sqlite3.Connection, filt: RunFilter) -> dict[str, int]:
    """Runs per status under ``filt`` (its status ignored): the numbers on the filter chips."""
    where, args = _run_where(filt, with_status=False)
    return {str(s): int(n) for s, n in conn.execute(
        f"SELECT r.status, COUNT(*) FROM runs r {_where(where)} GROUP BY r.status", args)}


def run_extras(conn: sqlite3.Connection, run_id: str) -> tuple[Any, ...] | None:
    """What the run page shows beyond the REST run: names, creation time, retries allowed, parent,
    the run it replays and what flow control holds it on (as a sentence, or None)."""
    row: tuple[Any, ...] | None = conn.execute(
        "SELECT COALESCE(f.name, r.function_slug), COALESCE(e.name, ''), r.created_at, r.max_attempts, r.parent, "
        f"r.status, {_FLOW_COLS} FROM {_RUN_FROM} WHERE r.run_id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    app = waits.waiting_for_app(row[5], row[11], row[10], row[12], row[13])
    waiting = flowstate.app_waiting(app) or flowstate.run_waiting(row[7], row[8], row[5], row[9],
                                                                   int(time.time() * 1000))
    return (*row[:5], row[6], waiting)


def run_replays(conn: sqlite3.Connection, run_id: str) -> list[str]:
    """The runs that replay ``run_id``, oldest first (partial index ``runs_by_replay_of``)."""
    return [str(r[0]) for r in conn.execute(
        "SELECT run_id FROM runs WHERE replay_of = ? ORDER BY run_id LIMIT 100", (run_id,))]


def run_waits(conn: sqlite3.Connection, run_id: str) -> list[WaitRow]:
    """What a run is doing or waiting on, soonest first.

    ``running``: a call to the app is in flight (a leased queue row; the time
    is when it became due); ``retry``: a failed call queued again; ``sleep``:
    a sleep's wake-up; ``wait``/``invoke``: a pause for an event until its
    deadline; ``parked``: a call held by a full concurrency key or a paused
    function (``flow_waiting``; the deadline is when it was due);
    ``delayed``: a first call scheduled later by throttle or priority.
    """
    rows = conn.execute(
        "SELECT 'running', NULLIF(step_id, 'step'), NULL, NULL, ready_at, NULL, NULL FROM queue "
        "WHERE run_id = ? AND kind IN ('step', 'start') AND lease_until IS NOT NULL "
        "UNION ALL SELECT 'sleep', step_id, NULL, NULL, ready_at, NULL, NULL FROM queue "
        "WHERE run_id = ? AND kind = 'sleep' "
        "UNION ALL SELECT 'retry', step_id, NULL, NULL, ready_at, NULL, NULL FROM queue "
        "WHERE run_id = ? AND kind IN ('step', 'start') AND attempt > 0 AND lease_until IS NULL "
        "AND id NOT IN (SELECT item_id FROM flow_waiting) "
        "UNION ALL SELECT 'parked', NULLIF(q.step_id, 'step'), NULL, NULL, w.ready_at, w.key, w.lim FROM queue q "
        "JOIN flow_waiting w ON w.item_id = q.id WHERE q.run_id = ? "
        "UNION ALL SELECT kind, step_id, event_name, expression, expires_at, NULL, NULL FROM pauses "
        "WHERE run_id = ? AND kind IN ('wait', 'invoke') ORDER BY 5",
        (run_id, run_id, run_id, run_id, run_id)).fetchall()
    return [WaitRow(row[0], row[1], row[2], row[3], int(row[4]),
                    flowstate.waiting_reason(row[5], int(row[6])) if row[5] else None) for row in rows]


def list_events(conn: sqlite3.Connection, name: str | None, before: str | None, limit: int) -> Page[EventRow]:
    limit = max(1, min(limit, MAX_LIMIT))
    where: list[str] = []
    args: list[Any] = []
    if name:
        where.append("name = ?")
        args.append(name)
    if before:
        where.append("internal_id < ?")
        args.append(before)
    rows = conn.execute(
        "SELECT internal_id, name, NULL, received_at, "
        "(SELECT COUNT(*) FROM runs WHERE runs.event_id = events.internal_id) "
        f"FROM events {_where(where)} ORDER BY internal_id DESC LIMIT ?", (*args, limit + 1)).fetchall()
    items = [EventRow(*row) for row in rows[:limit]]
    return Page(items, items[-1].event_id if len(rows) > limit else None)


def delayed_start(conn: sqlite3.Connection, run_id: str) -> WaitRow | None:
    """A Queued run's first call scheduled in the future (throttle, negative priority), with the reason."""
    row = conn.execute(
        "SELECT q.ready_at, f.config FROM queue q JOIN runs r ON r.run_id = q.run_id "
        "LEFT JOIN functions f ON f.slug = r.function_slug WHERE q.run_id = ? AND q.kind = 'start' "
        "AND q.attempt = 0 AND q.lease_until IS NULL AND r.status = 'Queued' "
        "AND q.id NOT IN (SELECT item_id FROM flow_waiting)",
        (run_id,)).fetchone()
    if row is None or int(row[0]) <= int(time.time() * 1000):
        return None
    reason = flowstate.run_waiting(None, int(row[0]), "Queued", row[1], int(time.time() * 1000))
    return WaitRow("delayed", None, None, None, int(row[0]), reason)


def function_names(conn: sqlite3.Connection) -> dict[str, str]:
    return {str(s): str(n) for s, n in conn.execute("SELECT slug, name FROM functions")}


# -- turning store rows into dashboard rows ----------------------------------------------------

def error_info(value: Any) -> ErrorInfo | None:
    """An SDK error (``{"name","message","stack"}``, possibly under "error") as ErrorInfo."""
    if isinstance(value, dict) and isinstance(value.get("error"), dict):
        value = value["error"]
    if isinstance(value, dict) and ("message" in value or "name" in value):
        stack = value.get("stack")
        return ErrorInfo(str(value.get("name") or "Error"), str(value.get("message") or ""),
                         stack if isinstance(stack, str) else "")
    if value is None:
        return None
    return ErrorInfo("Error", value if isinstance(value, str) else json.dumps(value))


def _ms(value: Any) -> int:
    return parse_rfc3339(value) or 0


def _summary_from_rest(run: dict[str, Any], function_name: str, event_name: str, created_at: int,
                       replay_of: str | None = None, waiting: str | None = None) -> RunSummary:
    return RunSummary(run["run_id"], run["function_slug"], function_name, run["app_id"], run["event_id"],
                      event_name, run["status"], int(run["attempt"] or 0), created_at,
                      parse_rfc3339(run["run_started_at"]), parse_rfc3339(run["ended_at"]), replay_of, waiting,
                      run.get("waiting_for_app"))


def _function(f: dict[str, Any], paused: dict[str, int] | None = None) -> FunctionRow:
    triggers: list[str] = []
    for trig in (f.get("config") or {}).get("triggers") or []:
        if isinstance(trig, dict) and trig.get("event"):
            triggers.append(f"event: {trig['event']}")
        elif isinstance(trig, dict) and trig.get("cron"):
            triggers.append(f"cron: {trig['cron']}")
    return FunctionRow(f["slug"], f["id"], f["name"], f["app_id"], triggers, bool(f["archived"]),
                       (paused or {}).get(f["slug"]))


class CountCache:
    """Runs-per-status counts, reused for a while in proportion to what they cost.

    Counting is the one query that grows with the table (a scan: ~5 ms at
    10,000 runs, ~100 ms at 100,000 on the 2-core machine), while the list
    itself is an index range (~0.2 ms at any size). A count that took ``t``
    is reused for ``COST_FACTOR * t`` (at most ``MAX_AGE_S``): free on a small
    database, and on a large one the chips may lag the list by a few seconds
    rather than every page paying the scan. The clock is injected for tests.
    """

    COST_FACTOR = 50
    MAX_AGE_S = 5.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[RunFilter, tuple[float, dict[str, int]]] = {}

    def get(self, filt: RunFilter) -> dict[str, int] | None:
        entry = self._entries.get(filt)
        if entry is None or self._clock() >= entry[0]:
            return None
        return entry[1]

    def put(self, filt: RunFilter, counts: dict[str, int], cost_s: float) -> None:
        age = min(self.MAX_AGE_S, self.COST_FACTOR * cost_s)
        if age > 0.05:
            if len(self._entries) > 256:
                self._entries.clear()
            self._entries[filt] = (self._clock() + age, counts)


class SqliteDashboardReader:
    """``DashboardReader`` on the engine's store: ``store.queries`` first, this module's additions second."""

    def __init__(self, db: ReadsSQLite, counts: CountCache | None = None) -> None:
        self._db = db
        self._counts = counts or CountCache()

    async def list_runs(self, filt: RunFilter, before: str | None, limit: int) -> Page[RunSummary]:
        return await self._db.read(lambda c: list_runs(c, filt, before, limit))

    async def count_runs(self, filt: RunFilter) -> dict[str, int]:
        key = RunFilter(None, filt.function, filt.since, filt.until)  # the status is ignored anyway
        cached = self._counts.get(key)
        if cached is not None:
            return cached
        started = time.perf_counter()
        counts = await self._db.read(lambda c: count_runs(c, key))
        self._counts.put(key, counts, time.perf_counter() - started)
        return counts

    async def get_run(self, run_id: str) -> RunDetail | None:
        def q(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            run = store_queries.get_run(conn, run_id)
            extras = run_extras(conn, run_id)
            if run is None or extras is None:
                return None
            return (run, extras, store_queries.run_events(conn, run_id) or [], run_replays(conn, run_id),
                    flowstate.paused_at(conn, run["function_slug"]))

        found = await self._db.read(q)
        if found is None:
            return None
        run, (function_name, event_name, created_at, max_attempts, parent, replay_of, waiting), events = found[:3]
        replays, fn_paused_at = found[3:]
        summary = _summary_from_rest(run, function_name, event_name, created_at, replay_of, waiting)
        output, error = run["output"], None
        if summary.status == "Failed":
            error = error_info(output) or error_info(run["error"]) or ErrorInfo("Error", "the run failed")
            if run["error"] and run["error"] not in error.message:
                error = ErrorInfo(error.name, f"{error.message} ({run['error']})" if error.message else run["error"],
                                  error.stack)
            output = None
        elif run["error"]:
            error = ErrorInfo("Cancelled" if summary.status == "Cancelled" else "Error", str(run["error"]))
        return RunDetail(summary, run["function_id"], events, output, error, int(max_attempts), parent, replays,
                         fn_paused_at)

    async def run_steps(self, run_id: str) -> list[StepRow]:
        steps = await self._db.read(lambda c: store_queries.run_steps(c, run_id))
        return [StepRow(s["step_id"], s["name"], s["op"], s["status"], int(s["attempt"] or 0), seq,
                        _ms(s["started_at"]), _ms(s["ended_at"]), s["output"], error_info(s["error"]))
                for seq, s in enumerate(steps)]

    async def run_history(self, run_id: str) -> list[HistoryRow]:
        rows = await self._db.read(lambda c: store_queries.run_history(c, run_id))
        return [HistoryRow(i, _ms(h["at"]), h["type"], h["step_id"], h["attempt"], h["detail"])
                for i, h in enumerate(rows)]

    async def run_waits(self, run_id: str) -> list[WaitRow]:
        def q(conn: sqlite3.Connection) -> list[WaitRow]:
            delayed = delayed_start(conn, run_id)
            return [delayed, *run_waits(conn, run_id)] if delayed else run_waits(conn, run_id)

        return await self._db.read(q)

    async def list_events(self, name: str | None, before: str | None, limit: int) -> Page[EventRow]:
        return await self._db.read(lambda c: list_events(c, name, before, limit))

    async def get_event(self, event_id: str) -> EventRow | None:
        def q(conn: sqlite3.Connection) -> tuple[dict[str, Any], int] | None:
            event = store_queries.get_event(conn, event_id)
            if event is None:
                return None
            return event, len(store_queries.event_runs(conn, event_id))

        found = await self._db.read(q)
        if found is None:
            return None
        event, run_count = found
        body = {k: event[k] for k in ("id", "name", "data", "user", "ts", "v") if event.get(k) is not None}
        return EventRow(event["internal_id"], event["name"] or "", body, _ms(event["received_at"]), run_count)

    async def event_runs(self, event_id: str) -> list[RunSummary]:
        def q(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], dict[str, str], str, list[Any]]:
            runs = store_queries.event_runs(conn, event_id)
            event = store_queries.get_event(conn, event_id)
            created = [run_extras(conn, r["run_id"]) for r in runs]
            return runs, function_names(conn), (event or {}).get("name") or "", created

        runs, names, event_name, extras = await self._db.read(q)
        out = [_summary_from_rest(r, names.get(r["function_slug"], r["function_slug"]), event_name,
                                  int(x[2]) if x else 0, x[5] if x else None, x[6] if x else None)
               for r, x in zip(runs, extras, strict=True)]
        return sorted(out, key=lambda r: r.run_id, reverse=True)

    async def list_functions(self) -> list[FunctionRow]:
        rows, paused = await self._db.read(lambda c: (store_queries.list_functions(c, include_archived=True),
                                                      flowstate.paused_functions(c)))
        return sorted((_function(f, paused) for f in rows), key=lambda f: (f.archived, f.app_id, f.name))

    async def get_function(self, slug: str) -> FunctionDetail | None:
        def q(conn: sqlite3.Connection) -> FunctionDetail | None:
            found = next((f for f in store_queries.list_functions(conn, include_archived=True)
                          if f["slug"] == slug), None)
            if found is None:
                return None
            config = found["config"] if isinstance(found.get("config"), dict) else {}
            fn = _function(found, {slug: p} if (p := flowstate.paused_at(conn, slug)) is not None else {})
            return FunctionDetail(fn, flowstate.flow_settings(config), flowstate.function_waiting(conn, slug),
                                  flowstate.function_skips(conn, slug),
                                  list_runs(conn, RunFilter(function=slug), None, RECENT_RUNS).items)

        return await self._db.read(q)

    async def event_skips(self, event_id: str) -> list[SkipRow]:
        return await self._db.read(lambda c: flowstate.event_skips(c, event_id))

    async def replay_matches(self, slug: str, request: ReplayRequest) -> int:
        return await self._db.read(lambda c: count_to_replay_txn(c, slug, request))

    async def list_apps(self) -> list[AppRow]:
        functions = await self.list_functions()
        apps = await self._db.read(store_queries.list_apps)
        return [AppRow(a["id"], a["url"], a["sdk"], a["framework"], a["error"], _ms(a["synced_at"]),
                       [f for f in functions if f.app_id == a["id"]]) for a in apps]
