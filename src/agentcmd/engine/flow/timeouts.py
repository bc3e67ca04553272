"""``timeouts.finish`` measured as Inngest does: from the run's start, not from its scheduling.

The ``run_timeout`` queue row for ``finish`` is written when the run is
created (``store.runs.create_runs_txn``), before anyone knows when the
run will start: throttle, concurrency, a paused function or a negative
priority can keep it queued. When the row comes due (``run_timeout_txn``),
``postpone_finish_txn`` moves it to ``started_at + finish`` if that is later
(and, for a run that has not started yet, checks again one ``finish``
later), so only time spent running counts. ``timeouts.start`` is unchanged: it counts the wait.
"""

from __future__ import annotations

import json
import sqlite3

from agentcmd.engine.protocol import parse_duration_ms
from agentcmd.engine.store import queue, runs
from agentcmd.engine.store.models import NewItem, QueueItem, QueueKind, RunStatus


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


def postpone_finish_txn(conn: sqlite3.Connection, item: QueueItem, now: int, started_at: int | None,
                        status: RunStatus, config_json: str | None) -> bool:
    """Re-queue a due ``finish`` check whose deadline, counted from the start, is later. True if moved."""
    limit_ms = finish_ms(config_json) if config_json is not None else None
    if limit_ms is None:
        return False
    later = finish_deadline(status.value, started_at, limit_ms, now)
    if later is None:
        return False
    queue.enqueue_txn(conn, item.run_id, NewItem(QueueKind.RUN_TIMEOUT, None, later, item.payload))
    return True


def run_timeout_txn(conn: sqlite3.Connection, item: QueueItem, now: int) -> bool:
    """A ``run_timeout`` row came due: cancel the run if it is still not started/finished. True if cancelled."""
    queue.ack_txn(conn, item.id)
    state = runs.timeout_state_txn(conn, str(item.run_id))
    if state is None or state[0].final:
        return False
    status, started_at, config_json = state
    which = item.payload.get("which")
    if which == "start" and status != RunStatus.QUEUED:
        return False
    if which == "finish" and postpone_finish_txn(conn, item, now, started_at, status, config_json):
        return False    # measured from the run's start, which came later than its scheduling
    reason = f"timeouts.{which}: the run did not {'start' if which == 'start' else 'finish'} in time"
    return runs.finish_run_txn(conn, str(item.run_id), RunStatus.CANCELLED, None, reason, now=now)
