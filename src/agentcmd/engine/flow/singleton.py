"""Singleton: at most one unfinished run per function and ``singleton.key`` value.

``singleton: {mode, key?}``: with ``skip`` a new run is not started while
one runs for the same key (the event's skip is recorded in ``flow_skips``);
with ``cancel`` the running one is Cancelled and the new one starts. Runs
are tracked per key in ``flow_singleton`` (migration 0005), so a check
reads the key's few rows instead of the function's whole run history.
"""

from __future__ import annotations

import sqlite3

ACTIVE = ("Queued", "Running")


def active_txn(conn: sqlite3.Connection, key: str) -> list[str]:
    """Unfinished runs under ``key``; rows of finished (or never created) runs are dropped."""
    active: list[str] = []
    for run_id, status in conn.execute(
            "SELECT s.run_id, r.status FROM flow_singleton s LEFT JOIN runs r ON r.run_id = s.run_id "
            "WHERE s.key=?", (key,)).fetchall():
        if status in ACTIVE:
            active.append(str(run_id))
        else:
            conn.execute("DELETE FROM flow_singleton WHERE run_id=?", (run_id,))
    return active


def register_txn(conn: sqlite3.Connection, key: str, run_id: str) -> None:
    conn.execute("INSERT OR REPLACE INTO flow_singleton (run_id, key) VALUES (?, ?)", (run_id, key))
