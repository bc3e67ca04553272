"""Pausing a function (``POST /v1/functions/{id}/pause`` and ``/unpause``, routes in ``api/functions.py``).

As in Inngest ("pause immediately"): while a function is paused, events
are still stored but do not trigger it (the skip is recorded in
``flow_skips`` with reason ``paused``), its cron ticks start nothing, and
runs already in progress stop before their next SDK call: the call is
parked like one waiting on a full concurrency key (``concurrency.py``,
key ``paused:<slug>``, limit 0). Unpausing resumes those runs where they
stopped; events received meanwhile are not replayed (Inngest says the same).

The paused state is the ``flow_paused`` table (migration 0004), so it
survives restarts; the gate keeps a copy in memory for the hot path.
"""

from __future__ import annotations

import sqlite3

PAUSED_PREFIX = "paused:"


def paused_key(slug: str) -> str:
    return PAUSED_PREFIX + slug


def is_paused_txn(conn: sqlite3.Connection, slug: str) -> bool:
    return conn.execute("SELECT 1 FROM flow_paused WHERE slug=?", (slug,)).fetchone() is not None


def paused_slugs_txn(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT slug FROM flow_paused")}


def pause_txn(conn: sqlite3.Connection, slug: str, now: int) -> bool:
    """Pause; False if it already was."""
    return conn.execute("INSERT INTO flow_paused (slug, paused_at) VALUES (?, ?) ON CONFLICT(slug) DO NOTHING",
                        (slug, now)).rowcount == 1


def unpause_txn(conn: sqlite3.Connection, slug: str) -> bool:
    """Unpause; False if it was not paused."""
    return conn.execute("DELETE FROM flow_paused WHERE slug=?", (slug,)).rowcount == 1


def record_skip_txn(conn: sqlite3.Connection, slug: str, event_id: str, reason: str, now: int) -> None:
    conn.execute("INSERT INTO flow_skips (function_slug, event_id, reason, at) VALUES (?,?,?,?)",
                 (slug, event_id, reason, now))
