"""The only read path: REST, GraphQL, the dashboard and the CLI all call these.

Each function takes a connection and returns plain JSON-ready dicts in the
shapes docs/architecture.md promises (times as RFC 3339 UTC strings).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from agentcmd.engine.protocol import iso_ms
from agentcmd.engine.store.waits import waiting_for_app

_RUN_COLS = ("r.run_id, f.uuid, r.function_slug, r.app_id, r.event_id, r.status, r.output, r.error, "
             "r.started_at, r.ended_at, r.attempt, r.created_at, r.parent, r.wait_since, r.wait_url, r.wait_reason")


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _run(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "run_id": row[0], "function_id": row[1], "function_slug": row[2], "app_id": row[3],
        "event_id": row[4], "status": row[5], "output": _loads(row[6]), "error": row[7],
        "run_started_at": iso_ms(row[8] if row[8] is not None else row[11]), "ended_at": iso_ms(row[9]),
        "attempt": row[10],
        "waiting_for_app": waiting_for_app(row[5], row[3], row[13], row[14], row[15]),
    }


def get_run(conn: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_RUN_COLS} FROM runs r LEFT JOIN functions f ON f.slug=r.function_slug "
                       "WHERE r.run_id=?", (run_id,)).fetchone()
    return _run(row) if row else None


def get_run_raw(conn: sqlite3.Connection, run_id: str) -> tuple[str, str | None] | None:
    """(status, raw output text) for GraphQL, which returns the output as a JSON string."""
    row = conn.execute("SELECT status, output FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return (row[0], row[1]) if row else None


def list_runs(conn: sqlite3.Connection, function_id: str | None = None, status: str | None = None,
              limit: int = 20, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; ``cursor`` is the last run id of the previous page."""
    where, args = [], []
    if function_id:
        where.append("(f.uuid=? OR r.function_slug=?)")
        args += [function_id, function_id]
    if status:
        where.append("lower(r.status)=lower(?)")
        args.append(status)
    if cursor:
        where.append("r.run_id<?")
        args.append(cursor)
    sql = f"SELECT {_RUN_COLS} FROM runs r LEFT JOIN functions f ON f.slug=r.function_slug"
    if where:
        sql += " WHERE " + " AND ".join(where)
    limit = max(1, min(limit, 500))
    rows = conn.execute(sql + " ORDER BY r.run_id DESC LIMIT ?", (*args, limit + 1)).fetchall()
    runs = [_run(r) for r in rows[:limit]]
    return runs, (runs[-1]["run_id"] if len(rows) > limit else None)


def run_steps(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    out = []
    for sid, name, op, memo, status, attempt, started, ended in conn.execute(
            "SELECT step_id, name, op, memo, status, attempt, started_at, ended_at FROM steps WHERE run_id=? "
            "ORDER BY seq", (run_id,)):
        value = _loads(memo)
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


def run_history(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    return [{"at": iso_ms(at), "type": t, "step_id": s, "attempt": a, "detail": d} for at, t, s, a, d in
            conn.execute("SELECT at, type, step_id, attempt, detail FROM history WHERE run_id=? ORDER BY id",
                         (run_id,))]


def step_output(conn: sqlite3.Connection, output_id: str) -> tuple[Any, Any] | None:
    """(data, error) of one memo by ``<run id>:<step id>``; the data unwrapped."""
    run_id, _, step_id = output_id.partition(":")
    row = conn.execute("SELECT memo FROM steps WHERE run_id=? AND step_id=?", (run_id, step_id)).fetchone()
    if row is None:
        return None
    value = _loads(row[0])
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


def _event(row: tuple[Any, ...]) -> dict[str, Any]:
    body = json.loads(row[1])
    return {"internal_id": row[0], "id": body.get("id") or row[0], "name": body.get("name"),
            "data": body.get("data") or {}, "user": body.get("user") or {}, "ts": body.get("ts"),
            "v": body.get("v"), "received_at": iso_ms(row[2])}


def get_event(conn: sqlite3.Connection, internal_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT internal_id, body, received_at FROM events WHERE internal_id=?",
                       (internal_id,)).fetchone()
    return _event(row) if row else None


def event_body(conn: sqlite3.Connection, internal_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT body FROM events WHERE internal_id=?", (internal_id,)).fetchone()
    return json.loads(row[0]) if row else None


def list_events(conn: sqlite3.Connection, name: str | None = None, limit: int = 20,
                cursor: str | None = None) -> list[dict[str, Any]]:
    where, args = [], []
    if name:
        where.append("name=?")
        args.append(name)
    if cursor:
        where.append("internal_id<?")
        args.append(cursor)
    sql = "SELECT internal_id, body, received_at FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    limit = max(1, min(limit, 51))
    return [_event(r) for r in conn.execute(sql + " ORDER BY internal_id DESC LIMIT ?", (*args, limit))]


def event_runs(conn: sqlite3.Connection, internal_id: str) -> list[dict[str, Any]]:
    return [_run(r) for r in conn.execute(
        f"SELECT {_RUN_COLS} FROM runs r LEFT JOIN functions f ON f.slug=r.function_slug WHERE r.event_id=? "
        "ORDER BY r.run_id", (internal_id,))]


def list_functions(conn: sqlite3.Connection, include_archived: bool = False) -> list[dict[str, Any]]:
    sql = "SELECT slug, uuid, app_id, name, url, config, archived FROM functions"
    if not include_archived:
        sql += " WHERE archived=0"
    return [{"slug": s, "id": u, "app_id": a, "name": n, "url": url, "config": json.loads(c),
             "archived": bool(ar)} for s, u, a, n, url, c, ar in conn.execute(sql + " ORDER BY slug")]


def list_apps(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [{"id": a, "url": u, "sdk": s, "framework": f, "error": e, "synced_at": iso_ms(t)}
            for a, u, s, f, e, t in conn.execute(
                "SELECT app_id, url, sdk, framework, error, synced_at FROM apps ORDER BY app_id")]


def pauses_for_event(conn: sqlite3.Connection, name: str, internal_id: str,
                     correlation: str | None) -> list[dict[str, Any]]:
    """Pauses an event may resolve: same name, registered before it, plus invoke waits by correlation."""
    rows = conn.execute(
        "SELECT id, kind, run_id, step_id, expression, correlation, expires_at, payload FROM pauses "
        "WHERE event_name=? AND after_event<? AND kind!='invoke'", (name, internal_id)).fetchall()
    if correlation:
        rows += conn.execute(
            "SELECT id, kind, run_id, step_id, expression, correlation, expires_at, payload FROM pauses "
            "WHERE kind='invoke' AND correlation=?", (correlation,)).fetchall()
    return [{"id": r[0], "kind": r[1], "run_id": r[2], "step_id": r[3], "expression": r[4], "correlation": r[5],
             "expires_at": r[6], "payload": json.loads(r[7])} for r in rows]


def run_trigger_events(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]] | None:
    return run_events(conn, run_id)


def next_ready_at(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MIN(ready_at) FROM queue WHERE lease_until IS NULL").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def active_runs(conn: sqlite3.Connection, slug: str, key: str | None) -> list[str]:
    """Unfinished runs of a function (singleton), optionally with one singleton key."""
    sql = "SELECT run_id FROM runs WHERE function_slug=? AND status IN ('Queued','Running')"
    args: list[Any] = [slug]
    if key is not None:
        sql += " AND idem_key=?"
        args.append(key)
    return [r[0] for r in conn.execute(sql, args)]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    out = {s: int(n) for s, n in conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status")}
    out["queue"] = int(conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0])
    return out


# Events that started no run of a function, and why (``flow_skips``, migration 0003): read by
# ``GET /v1/functions/{id}/skips`` and by the dashboard's function and event pages.
_SKIP_SQL = ("SELECT s.function_slug, COALESCE(f.name, s.function_slug), s.event_id, COALESCE(e.name, ''), "
             "s.reason, s.at FROM flow_skips s LEFT JOIN functions f ON f.slug = s.function_slug "
             "LEFT JOIN events e ON e.internal_id = s.event_id")


def _skip(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"event_id": row[2], "event_name": row[3], "reason": row[4], "at": iso_ms(int(row[5])),
            "function_slug": row[0], "function_name": row[1]}


def function_skips(conn: sqlite3.Connection, function_ref: str, limit: int = 20) -> list[dict[str, Any]] | None:
    """A function's latest skipped events, newest first; None if no function has that slug or uuid.

    Archived functions are found too: their skips stay readable after the app drops them.
    """
    row = conn.execute("SELECT slug FROM functions WHERE slug=? OR uuid=? ORDER BY slug=? DESC LIMIT 1",
                       (function_ref, function_ref, function_ref)).fetchone()
    if row is None:
        return None
    rows = conn.execute(f"{_SKIP_SQL} WHERE s.function_slug = ? ORDER BY s.id DESC LIMIT ?",
                        (row[0], max(1, limit))).fetchall()
    return [_skip(r) for r in rows]


def event_skips(conn: sqlite3.Connection, internal_id: str) -> list[dict[str, Any]]:
    """The functions an event did not start, and why, in the order they were skipped."""
    return [_skip(r) for r in conn.execute(f"{_SKIP_SQL} WHERE s.event_id = ? ORDER BY s.id", (internal_id,))]
