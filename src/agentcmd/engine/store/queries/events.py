"""Events: one event, the events list (REST's ``GET /v1/events`` and the dashboard's ``/events``),
and the pauses an event may resolve."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from agentcmd.engine.protocol import iso_ms
from agentcmd.engine.store.queries.models import EventRow, Page, parse_rfc3339
from agentcmd.engine.store.queries.paging import keyset

MAX_LIMIT = 200  # the dashboard's pages
API_MAX_LIMIT = 51  # GET /v1/events


def _event(row: tuple[Any, ...]) -> dict[str, Any]:
    body = json.loads(row[1])
    return {"internal_id": row[0], "id": body.get("id") or row[0], "name": body.get("name"),
            "data": body.get("data") or {}, "user": body.get("user") or {}, "ts": body.get("ts"),
            "v": body.get("v"), "received_at": iso_ms(row[2])}


def get_event(conn: sqlite3.Connection, internal_id: str) -> dict[str, Any] | None:
    """``GET /v1/events/{id}``."""
    row = conn.execute("SELECT internal_id, body, received_at FROM events WHERE internal_id=?",
                       (internal_id,)).fetchone()
    return _event(row) if row else None


def event_body(conn: sqlite3.Connection, internal_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT body FROM events WHERE internal_id=?", (internal_id,)).fetchone()
    return json.loads(row[0]) if row else None


def event_row(conn: sqlite3.Connection, internal_id: str) -> EventRow | None:
    """The dashboard's event page: the event as the SDK sees it, and how many runs it started."""
    event = get_event(conn, internal_id)
    if event is None:
        return None
    run_count = int(conn.execute("SELECT COUNT(*) FROM runs WHERE event_id = ?", (internal_id,)).fetchone()[0])
    body = {k: event[k] for k in ("id", "name", "data", "user", "ts", "v") if event.get(k) is not None}
    return EventRow(event["internal_id"], event["name"] or "", body, parse_rfc3339(event["received_at"]) or 0,
                    run_count)


def _name_filter(name: str | None) -> tuple[list[str], list[Any]]:
    return (["name = ?"], [name]) if name else ([], [])


def list_events(conn: sqlite3.Connection, name: str | None, before: str | None, limit: int) -> Page[EventRow]:
    """The dashboard's ``/events``: newest first, with each event's run count (bodies left out)."""
    where, args = _name_filter(name)
    page = keyset(conn, "SELECT internal_id, name, NULL, received_at, "
                        "(SELECT COUNT(*) FROM runs WHERE runs.event_id = events.internal_id) FROM events",
                  where, args, "internal_id", before, limit, MAX_LIMIT)
    return Page([EventRow(*row) for row in page.items], page.next_cursor)


def api_events(conn: sqlite3.Connection, name: str | None = None, limit: int = 20,
               cursor: str | None = None) -> list[dict[str, Any]]:
    """``GET /v1/events``: newest first, with their bodies."""
    where, args = _name_filter(name)
    page = keyset(conn, "SELECT internal_id, body, received_at FROM events", where, args, "internal_id",
                  cursor, limit, API_MAX_LIMIT)
    return [_event(r) for r in page.items]


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
