"""What ``/metrics`` reads from the database at scrape time: one cheap query per question.

The engine's gauges (queue depth per lane, runs waiting for their app, the
database's size) are the database's state, so they are read when Prometheus
asks rather than kept in step with every write. Each query here stays cheap
on a large database: the queue is small compared with runs (finished runs
leave it) and is counted on its lane index, a run waiting for its app
always has its call in the queue, leased or due within ``waits.RETRY_MS``
(``waits.app_interrupted_txn``), so it is found from those rows by primary
key rather than by scanning every run, and the size comes from SQLite's
page counts. Measured on a database of 1,000,000 runs and a queue of 20,000
items (benchmarks/metrics_scrape_bench.py): about 8 ms a scrape, median, on a shared 2-core machine (the
first version, one GROUP BY over the queue and every queued run looked up: 40 ms;
a scan of every run for the waiting ones: 200-500 ms).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

LANES = ("runs", "events")
QUEUE_STATES = ("ready", "scheduled", "leased")
WAIT_MARGIN_MS = 60_000     # a waiting run's call is due again within waits.RETRY_MS; a minute of slack


@dataclass(frozen=True)
class Gauges:
    """One scrape's database-derived numbers."""

    queue: dict[tuple[str, str], int] = field(default_factory=dict)   # (lane, state) -> items
    waiting_for_app: int = 0
    db_bytes: int = 0
    db_free_bytes: int = 0


def read_gauges(conn: sqlite3.Connection, now: int) -> Gauges:
    """Queue items by lane and state, runs waiting for their app, the database file's size and free pages."""
    queue: dict[tuple[str, str], int] = {}
    for lane in LANES:
        is_event = int(lane == "events")
        # Both counts run on the lane index (migration 0007), the first as a range of it.
        ready = conn.execute("SELECT COUNT(*) FROM queue WHERE (kind = 'event') = ? AND lease_until IS NULL "
                             "AND ready_at <= ?", (is_event, now)).fetchone()[0]
        free = conn.execute("SELECT COUNT(*) FROM queue WHERE (kind = 'event') = ? AND lease_until IS NULL",
                            (is_event,)).fetchone()[0]
        queue[(lane, "ready")], queue[(lane, "scheduled")] = int(ready), int(free) - int(ready)
        queue[(lane, "leased")] = 0
    for is_event, leased in conn.execute("SELECT kind = 'event', COUNT(*) FROM queue WHERE lease_until IS NOT NULL "
                                         "GROUP BY kind = 'event'"):
        queue[("events" if is_event else "runs", "leased")] = int(leased)
    # A waiting run's call is leased or due within RETRY_MS (0.5 s): only those rows are looked up, not the
    # sleeps and timeouts due later, which are most of a large queue.
    waiting = conn.execute(
        "SELECT COUNT(*) FROM runs WHERE run_id IN (SELECT run_id FROM queue WHERE lease_until IS NULL "
        "AND ready_at <= ? UNION SELECT run_id FROM queue WHERE lease_until IS NOT NULL) "
        "AND wait_since IS NOT NULL", (now + WAIT_MARGIN_MS,)).fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free_pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return Gauges(queue, int(waiting), int(pages) * int(page_size), int(free_pages) * int(page_size))
