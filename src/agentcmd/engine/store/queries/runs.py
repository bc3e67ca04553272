"""Runs: one run, the runs list (REST's ``GET /v1/runs`` and the dashboard's ``/runs`` alike), steps, history.

Every run is read with one ``SELECT`` (``_SELECT``) into a ``RunRecord``;
``RunRecord.api()`` is the REST/GraphQL shape (docs/architecture.md, times
as RFC 3339 strings) and ``RunRecord.summary()`` the dashboard's
``RunSummary``, so ``GET /v1/runs/{id}`` and a page's JSON twin cannot
disagree. The runs list is ``run_records``: the same filter (``RunFilter``),
the same keyset paging (``paging.keyset``) and the same SQL behind both.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from agentcmd.engine.protocol import iso_ms
from agentcmd.engine.store.queries import flowtext
from agentcmd.engine.store.queries.flow import DELAYED_SQL, WAITING_SQL, paused_at
from agentcmd.engine.store.queries.models import (
    ErrorInfo,
    HistoryRow,
    Page,
    RunDetail,
    RunFilter,
    RunSummary,
    StepRow,
    parse_rfc3339,
)
from agentcmd.engine.store.queries.paging import keyset, where_sql
from agentcmd.engine.store.resume import resume_of, run_resumes
from agentcmd.engine.store.waits import waiting_for_app

MAX_LIMIT = 200  # the dashboard's pages
API_MAX_LIMIT = 500  # GET /v1/runs

_FROM = ("FROM runs r LEFT JOIN functions f ON f.slug = r.function_slug "
         "LEFT JOIN events e ON e.internal_id = r.event_id")
_COLS = ("r.run_id, r.function_slug, COALESCE(f.name, r.function_slug), f.uuid, r.app_id, r.event_id, "
         "COALESCE(e.name, ''), r.status, r.attempt, r.created_at, r.started_at, r.ended_at, {output}, r.error, "
         "r.max_attempts, r.parent, r.replay_of, r.wait_since, r.wait_url, r.wait_reason, f.config, "
         f"{WAITING_SQL}, {DELAYED_SQL}")


def _select(with_output: bool, index: str | None = None) -> str:
    """The one run ``SELECT``; lists for the dashboard leave the (possibly large) output out.

    ``index`` names the runs index to read (``INDEXED BY``) where the planner would walk the
    whole run id index for a newest-first page of a few rows (``ended_after``).
    """
    src = _FROM if index is None else _FROM.replace("FROM runs r ", f"FROM runs r INDEXED BY {index} ", 1)
    return f"SELECT {_COLS.format(output='r.output' if with_output else 'NULL')} {src}"


def loads(text: str | None) -> Any:
    """Stored JSON text as a value (text that is not JSON as itself)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class RunRecord:
    """One run as ``_SELECT`` reads it, with what flow control and app waits say about it."""

    run_id: str
    function_slug: str
    function_name: str
    function_id: str | None
    app_id: str
    event_id: str
    event_name: str
    status: str
    attempt: int
    created_at: int
    started_at: int | None
    ended_at: int | None
    output: str | None
    error: str | None
    max_attempts: int
    parent: str | None
    replay_of: str | None
    waiting_for_app: dict[str, Any] | None
    waiting: str | None

    @classmethod
    def from_row(cls, row: tuple[Any, ...], now: int) -> RunRecord:
        app = waiting_for_app(row[7], row[4], row[17], row[18], row[19])
        waiting = flowtext.app_waiting(app) or flowtext.run_waiting(row[21], row[22], row[7], row[20], now)
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10], row[11],
                   row[12], row[13], row[14], row[15], row[16], app, waiting)

    def api(self) -> dict[str, Any]:
        """The REST and GraphQL shape of a run."""
        return {
            "run_id": self.run_id, "function_id": self.function_id, "function_slug": self.function_slug,
            "app_id": self.app_id, "event_id": self.event_id, "status": self.status, "output": loads(self.output),
            "error": self.error, "ended_at": iso_ms(self.ended_at), "attempt": self.attempt,
            "run_started_at": iso_ms(self.started_at if self.started_at is not None else self.created_at),
            "waiting_for_app": self.waiting_for_app,
        }

    def summary(self, started_or_created: bool = False) -> RunSummary:
        """The dashboard's row; its run and event pages show the creation time when a run has not started."""
        started = self.started_at
        if started_or_created and started is None:
            started = self.created_at
        return RunSummary(self.run_id, self.function_slug, self.function_name, self.app_id, self.event_id,
                          self.event_name, self.status, int(self.attempt or 0), self.created_at, started,
                          self.ended_at, self.replay_of, self.waiting, self.waiting_for_app)


def _now() -> int:
    return int(time.time() * 1000)


def _records(conn: sqlite3.Connection, where: str, args: tuple[Any, ...], with_output: bool = True) -> list[RunRecord]:
    now = _now()
    return [RunRecord.from_row(r, now) for r in conn.execute(f"{_select(with_output)} {where}", args)]


def _filter(filt: RunFilter, with_status: bool = True) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if with_status and filt.statuses:
        where.append(f"r.status IN ({','.join('?' * len(filt.statuses))})")
        args += filt.statuses
    if filt.function:
        # A function by slug, or by uuid (the REST API's function_id); one index range either way.
        where.append("r.function_slug = COALESCE((SELECT slug FROM functions WHERE uuid = ?), ?)")
        args += [filt.function, filt.function]
    if filt.since is not None:
        where.append("r.created_at >= ?")
        args.append(filt.since)
    if filt.until is not None:
        where.append("r.created_at < ?")
        args.append(filt.until)
    if filt.ended_after is not None:
        where.append("r.ended_at > ?")
        args.append(filt.ended_after)
    return where, args


def run_records(conn: sqlite3.Connection, filt: RunFilter, before: str | None, limit: int,
                cap: int = MAX_LIMIT, with_output: bool = False) -> Page[RunRecord]:
    """The runs list: newest first, ``limit`` rows from ``before`` (exclusive); one indexed range scan."""
    where, args = _filter(filt)
    # Runs that ended since a recent cursor are few: their index range, sorted, beats a walk of every run.
    index = "runs_by_ended" if filt.ended_after is not None else None
    page = keyset(conn, _select(with_output, index), where, args, "r.run_id", before, limit, cap)
    now = _now()
    return Page([RunRecord.from_row(r, now) for r in page.items], page.next_cursor)


def list_runs(conn: sqlite3.Connection, filt: RunFilter, before: str | None, limit: int) -> Page[RunSummary]:
    """The dashboard's ``/runs`` (and ``/runs.json``)."""
    page = run_records(conn, filt, before, limit)
    return Page([r.summary() for r in page.items], page.next_cursor)


def api_runs(conn: sqlite3.Connection, filt: RunFilter, before: str | None,
             limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """``GET /v1/runs``: the same list in the REST shape, and the next page's cursor."""
    page = run_records(conn, filt, before, limit, cap=API_MAX_LIMIT, with_output=True)
    return [r.api() for r in page.items], page.next_cursor


def count_runs(conn: sqlite3.Connection, filt: RunFilter) -> dict[str, int]:
    """Runs per status under ``filt`` (its status ignored): the numbers on the dashboard's filter chips."""
    where, args = _filter(filt, with_status=False)
    return {str(s): int(n) for s, n in conn.execute(
        f"SELECT r.status, COUNT(*) FROM runs r {where_sql(where)} GROUP BY r.status", args)}


def get_record(conn: sqlite3.Connection, run_id: str) -> RunRecord | None:
    found = _records(conn, "WHERE r.run_id = ?", (run_id,))
    return found[0] if found else None


def get_run(conn: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    """``GET /v1/runs/{id}`` (without ``replay_of``, which ``replay_of`` adds)."""
    record = get_record(conn, run_id)
    return record.api() if record else None


def get_run_raw(conn: sqlite3.Connection, run_id: str) -> tuple[str, str | None] | None:
    """(status, raw output text) for GraphQL, which returns the output as a JSON string."""
    row = conn.execute("SELECT status, output FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return (row[0], row[1]) if row else None


def replay_of(conn: sqlite3.Connection, run_id: str) -> str | None:
    """The run that ``run_id`` replays (migration 0006), or None for a run that is not a replay."""
    row = conn.execute("SELECT replay_of FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return str(row[0]) if row and row[0] else None


def run_replays(conn: sqlite3.Connection, run_id: str) -> list[str]:
    """The runs that replay ``run_id``, oldest first (partial index ``runs_by_replay_of``)."""
    return [str(r[0]) for r in conn.execute(
        "SELECT run_id FROM runs WHERE replay_of = ? ORDER BY run_id LIMIT 100", (run_id,))]


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


def _outcome(status: str, output: Any, error: str | None) -> tuple[Any, ErrorInfo | None]:
    """The run page's (output, error): a failed run's output is its error."""
    if status == "Failed":
        info = error_info(output) or error_info(error) or ErrorInfo("Error", "the run failed")
        if error and error not in info.message:
            info = ErrorInfo(info.name, f"{info.message} ({error})" if info.message else error, info.stack)
        return None, info
    if error:
        return output, ErrorInfo("Cancelled" if status == "Cancelled" else "Error", str(error))
    return output, None


def run_detail(conn: sqlite3.Connection, run_id: str) -> RunDetail | None:
    """The dashboard's run page: the run, its events, outcome, replays and whether its function is paused."""
    record = get_record(conn, run_id)
    if record is None:
        return None
    output, error = _outcome(record.status, loads(record.output), record.error)
    return RunDetail(record.summary(started_or_created=True), record.function_id, run_events(conn, run_id) or [],
                     output, error, int(record.max_attempts), record.parent, run_replays(conn, run_id),
                     paused_at(conn, record.function_slug), resume_of(conn, run_id), run_resumes(conn, run_id))


def event_records(conn: sqlite3.Connection, internal_id: str) -> list[RunRecord]:
    """The runs an event started, oldest first."""
    return _records(conn, "WHERE r.event_id = ? ORDER BY r.run_id", (internal_id,))


def event_runs(conn: sqlite3.Connection, internal_id: str) -> list[dict[str, Any]]:
    """``GET /v1/events/{id}/runs``: oldest first."""
    return [r.api() for r in event_records(conn, internal_id)]


def event_run_summaries(conn: sqlite3.Connection, internal_id: str) -> list[RunSummary]:
    """The event page's runs, newest first."""
    return [r.summary(started_or_created=True) for r in reversed(event_records(conn, internal_id))]


def run_steps(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    out = []
    for sid, name, op, memo, status, attempt, started, ended in conn.execute(
            "SELECT step_id, name, op, memo, status, attempt, started_at, ended_at FROM steps WHERE run_id=? "
            "ORDER BY seq", (run_id,)):
        value = loads(memo)
        output = error = None
        if isinstance(value, dict) and "error" in value and set(value) <= {"data", "error"}:
            error = value["error"]
        elif isinstance(value, dict) and set(value) == {"data"}:
            output = value["data"]
        else:
            output = value
        out.append({"step_id": sid, "name": name, "op": op, "status": status, "attempt": attempt,
                    "output": output, "error": error, "started_at": iso_ms(started), "ended_at": iso_ms(ended),
                    "output_id": f"{run_id}:{sid}"})
    return out


def step_rows(conn: sqlite3.Connection, run_id: str) -> list[StepRow]:
    """``run_steps`` as the dashboard's rows."""
    return [StepRow(s["step_id"], s["name"], s["op"], s["status"], int(s["attempt"] or 0), seq,
                    parse_rfc3339(s["started_at"]) or 0, parse_rfc3339(s["ended_at"]) or 0, s["output"],
                    error_info(s["error"])) for seq, s in enumerate(run_steps(conn, run_id))]


def run_history(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    return [{"at": iso_ms(at), "type": t, "step_id": s, "attempt": a, "detail": d} for at, t, s, a, d in
            conn.execute("SELECT at, type, step_id, attempt, detail FROM history WHERE run_id=? ORDER BY id",
                         (run_id,))]


def history_rows(conn: sqlite3.Connection, run_id: str) -> list[HistoryRow]:
    """``run_history`` as the dashboard's rows."""
    return [HistoryRow(i, parse_rfc3339(h["at"]) or 0, h["type"], h["step_id"], h["attempt"], h["detail"])
            for i, h in enumerate(run_history(conn, run_id))]


def step_output(conn: sqlite3.Connection, output_id: str) -> tuple[Any, Any] | None:
    """(data, error) of one memo by ``<run id>:<step id>``; the data unwrapped."""
    run_id, _, step_id = output_id.partition(":")
    row = conn.execute("SELECT memo FROM steps WHERE run_id=? AND step_id=?", (run_id, step_id)).fetchone()
    if row is None:
        return None
    value = loads(row[0])
    if isinstance(value, dict) and set(value) <= {"data", "error"} and value:
        return value.get("data"), value.get("error")
    return value, None


def run_memos(conn: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
        return None
    return {sid: json.loads(m) for sid, m in conn.execute(
        "SELECT step_id, memo FROM steps WHERE run_id=? ORDER BY seq", (run_id,))}


def run_events(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]] | None:
    row = conn.execute("SELECT events FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return json.loads(row[0]) if row else None


def run_trigger_events(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]] | None:
    return run_events(conn, run_id)


def active_runs(conn: sqlite3.Connection, slug: str, key: str | None) -> list[str]:
    """Unfinished runs of a function (singleton), optionally with one singleton key."""
    sql = "SELECT run_id FROM runs WHERE function_slug=? AND status IN ('Queued','Running')"
    args: list[Any] = [slug]
    if key is not None:
        sql += " AND idem_key=?"
        args.append(key)
    return [r[0] for r in conn.execute(sql, args)]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Runs per status and the queue's length (the health endpoint's figures)."""
    out = {s: int(n) for s, n in conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status")}
    out["queue"] = int(conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0])
    return out


def next_ready_at(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MIN(ready_at) FROM queue WHERE lease_until IS NULL").fetchone()
    return int(row[0]) if row and row[0] is not None else None
