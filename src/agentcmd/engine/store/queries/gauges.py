"""What ``/metrics`` reads from the database at scrape time: one cheap query per question.

The engine's gauges (queue depth per lane, runs waiting for their app, the
database's size) are the database's state, so they are read when Prometheus
asks rather than kept in step with every write. Each query here stays cheap
on a large database: the queue is small compared with runs (finished runs
leave it), a run waiting for its app always has its deferred call in the
queue (``waits.app_interrupted_txn``), so it is found from the queue by
primary key rather than by scanning every run, and the size comes from
SQLite's page counts.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

LANES = ("runs", "events")
QUEUE_STATES = ("ready", "scheduled", "leased")


@dataclass(frozen=True)
class Gauges:
    """One scrape's database-derived numbers."""

    queue: dict[tuple[str, str], int] = field(default_factory=dict)   # (lane, state) -> items
    waiting_for_app: int = 0
    db_bytes: int = 0
    db_free_bytes: int = 0


def read_gauges(conn: sqlite3.Connection, now: int) -> Gauges:
    """Queue items by lane and state, runs waiting for their app, the database file's size and free pages."""
    queue = {(lane, state): 0 for lane in LANES for state in QUEUE_STATES}
    for is_event, ready, scheduled, leased in conn.execute(
            "SELECT kind = 'event', "
            "SUM(lease_until IS NULL AND ready_at <= ?), SUM(lease_until IS NULL AND ready_at > ?), "
            "SUM(lease_until IS NOT NULL) FROM queue GROUP BY kind = 'event'", (now, now)):
        lane = "events" if is_event else "runs"
        queue[(lane, "ready")] = int(ready or 0)
        queue[(lane, "scheduled")] = int(scheduled or 0)
        queue[(lane, "leased")] = int(leased or 0)
    waiting = conn.execute(
        "SELECT COUNT(*) FROM runs WHERE run_id IN (SELECT run_id FROM queue WHERE run_id IS NOT NULL) "
        "AND wait_since IS NOT NULL").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return Gauges(queue, int(waiting), int(pages) * int(page_size), int(free) * int(page_size))
