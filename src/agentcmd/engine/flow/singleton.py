"""Singleton: at most one unfinished run per function and ``singleton.key`` value.

``singleton: {mode, key?}``: with ``skip`` a new run is not started while
one runs for the same key (the event's skip is recorded in ``flow_skips``);
with ``cancel`` the running one is Cancelled and the new one starts. Runs
are tracked per key in ``flow_singleton`` (migration 0005), so a check
reads the key's few rows instead of the function's whole run history
(the rows: ``store/flow.py``).
"""

from __future__ import annotations

import sqlite3

from agentcmd.engine.store import flow as flow_rows

ACTIVE = ("Queued", "Running")


def active_txn(conn: sqlite3.Connection, key: str) -> list[str]:
    """Unfinished runs under ``key``; rows of finished (or never created) runs are dropped."""
    active: list[str] = []
    for run_id, status in flow_rows.singleton_runs_txn(conn, key):
        if status in ACTIVE:
            active.append(run_id)
        else:
            flow_rows.forget_singleton_txn(conn, run_id)
    return active


def register_txn(conn: sqlite3.Connection, key: str, run_id: str) -> None:
    flow_rows.register_singleton_txn(conn, key, run_id)
