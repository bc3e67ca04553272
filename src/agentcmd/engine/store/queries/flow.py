"""Flow-control state (docs/flow-control.md): paused functions, parked and delayed calls, replay selections.

The engine keeps this state in its own tables: ``flow_waiting``
(migration 0003) holds a call parked on a full concurrency key or on a
paused function (key ``paused:<slug>``, limit 0); a throttled (or
negatively prioritised) run is a ``start`` queue row with a ``ready_at`` in
the future; ``flow_paused`` (0004) lists paused functions. ``flowtext.py``
says each in words.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from agentcmd.engine.store.queries import flowtext
from agentcmd.engine.store.queries.models import WaitingKey, WaitRow

WAITING_SQL = ("(SELECT w.key || char(31) || w.lim FROM queue q JOIN flow_waiting w ON w.item_id = q.id "
               "WHERE q.run_id = r.run_id LIMIT 1)")
DELAYED_SQL = ("CASE WHEN r.status = 'Queued' THEN (SELECT MIN(q.ready_at) FROM queue q "
               "WHERE q.run_id = r.run_id AND q.kind = 'start' AND q.attempt = 0 AND q.lease_until IS NULL) END")
"""Correlated subqueries for one run ``r``: its parked call (key, limit), its delayed first call's time."""


def paused_slugs(conn: sqlite3.Connection) -> set[str]:
    """The paused functions' slugs."""
    return {str(r[0]) for r in conn.execute("SELECT slug FROM flow_paused")}


def paused_at(conn: sqlite3.Connection, slug: str) -> int | None:
    row = conn.execute("SELECT paused_at FROM flow_paused WHERE slug = ?", (slug,)).fetchone()
    return int(row[0]) if row else None


def paused_functions(conn: sqlite3.Connection) -> dict[str, int]:
    """Slug -> when it was paused (ms)."""
    return {str(s): int(at) for s, at in conn.execute("SELECT slug, paused_at FROM flow_paused")}


def function_waiting(conn: sqlite3.Connection, slug: str) -> list[WaitingKey]:
    """Calls of the function's runs parked per key (a concurrency key, or the pause)."""
    rows = conn.execute(
        "SELECT w.key, MAX(w.lim), COUNT(*) FROM flow_waiting w JOIN queue q ON q.id = w.item_id "
        "JOIN runs r ON r.run_id = q.run_id WHERE r.function_slug = ? GROUP BY w.key ORDER BY w.key",
        (slug,)).fetchall()
    return [WaitingKey(str(k), int(lim), int(n), flowtext.waiting_reason(str(k), int(lim))) for k, lim, n in rows]


def _delayed_start(conn: sqlite3.Connection, run_id: str, now: int) -> WaitRow | None:
    """A Queued run's first call scheduled in the future (throttle, negative priority), with the reason."""
    row = conn.execute(
        "SELECT q.ready_at, f.config FROM queue q JOIN runs r ON r.run_id = q.run_id "
        "LEFT JOIN functions f ON f.slug = r.function_slug WHERE q.run_id = ? AND q.kind = 'start' "
        "AND q.attempt = 0 AND q.lease_until IS NULL AND r.status = 'Queued' "
        "AND q.id NOT IN (SELECT item_id FROM flow_waiting)",
        (run_id,)).fetchone()
    if row is None or int(row[0]) <= now:
        return None
    reason = flowtext.run_waiting(None, int(row[0]), "Queued", row[1], now)
    return WaitRow("delayed", None, None, None, int(row[0]), reason)


def run_waits(conn: sqlite3.Connection, run_id: str) -> list[WaitRow]:
    """What a run is doing or waiting on: a delayed first call, then the rest soonest first.

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
    waits = [WaitRow(row[0], row[1], row[2], row[3], int(row[4]),
                     flowtext.waiting_reason(row[5], int(row[6])) if row[5] else None) for row in rows]
    delayed = _delayed_start(conn, run_id, int(time.time() * 1000))
    return [delayed, *waits] if delayed else waits


def replay_selection(slug: str, from_ms: int, to_ms: int, statuses: tuple[str, ...]) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) picking a function's runs created in a range, with given statuses."""
    where = "function_slug=? AND created_at BETWEEN ? AND ?"
    args: list[Any] = [slug, from_ms, to_ms]
    if statuses:
        where += f" AND status IN ({','.join('?' * len(statuses))})"
        args += statuses
    return where, args


def replay_count(conn: sqlite3.Connection, slug: str, from_ms: int, to_ms: int, statuses: tuple[str, ...],
                 cap: int) -> int:
    """How many runs a replay of that selection would start now, counted up to ``cap + 1`` (over the cap)."""
    where, args = replay_selection(slug, from_ms, to_ms, statuses)
    return int(conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE {where} LIMIT ?)",
                            (*args, cap + 1)).fetchone()[0])
