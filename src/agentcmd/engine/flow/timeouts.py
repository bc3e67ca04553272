"""``timeouts.finish`` measured as Inngest does: from the run's start, not from its scheduling.

The ``run_timeout`` queue row for ``finish`` is written when the run is
created (``store.writes.create_runs_txn``), before anyone knows when the
run will start: throttle, concurrency, a paused function or a negative
priority can keep it queued. When the row comes due, ``postpone_finish_txn``
moves it to ``started_at + finish`` if that is later (and, for a run that
has not started yet, checks again one ``finish`` later), so only time spent
running counts. ``timeouts.start`` is unchanged: it counts the wait.
"""

from __future__ import annotations

import json
import sqlite3

from agentcmd.engine.protocol import parse_duration_ms
from agentcmd.engine.store.models import QueueItem, QueueKind, RunStatus


def finish_ms(config_json: str) -> int | None:
    try:
        raw = (json.loads(config_json).get("timeouts") or {}).get("finish")
        return parse_duration_ms(str(raw)) if raw else None
    except (ValueError, AttributeError, TypeError):
        return None


def finish_deadline(status: str, started_at: int | None, limit_ms: int, now: int) -> int | None:
    """When a due ``finish`` check should really fire; None = now (cancel the run)."""
    if status == RunStatus.QUEUED.value or started_at is None:
        return now + limit_ms
    deadline = started_at + limit_ms
    return deadline if deadline > now else None


def postpone_finish_txn(conn: sqlite3.Connection, item: QueueItem, now: int) -> bool:
    """Re-queue a due ``finish`` check whose deadline, counted from the start, is later. True if moved."""
    row = conn.execute("SELECT r.status, r.started_at, f.config FROM runs r JOIN functions f "
                       "ON f.slug=r.function_slug WHERE r.run_id=?", (item.run_id,)).fetchone()
    if row is None:
        return False
    limit_ms = finish_ms(str(row[2]))
    if limit_ms is None:
        return False
    later = finish_deadline(str(row[0]), None if row[1] is None else int(row[1]), limit_ms, now)
    if later is None:
        return False
    conn.execute("INSERT INTO queue (kind, run_id, step_id, ready_at, payload) VALUES (?,?,?,?,?)",
                 (QueueKind.RUN_TIMEOUT.value, item.run_id, None, later, json.dumps(item.payload)))
    return True


