"""The flow-control tables: paused functions, skipped events, marks, singleton runs, parked calls.

Only rows live here; what they mean (GCRA maths, keys, which limit
applies, when a call must wait) is ``agentcmd.engine.flow``, which calls
these functions inside its transactions and passes its decisions in.

* ``flow_paused`` (migration 0004): functions paused by the user.
* ``flow_skips`` (migration 0003): events that started no run, and why.
* ``flow_marks`` (migration 0002): rate-limit admissions and throttle
  ``tat`` values, one key each (``rl:``/``th:`` prefixes).
* ``flow_singleton`` (migration 0005): runs per singleton key.
* ``flow_waiting`` (migration 0003): queue rows parked on a full
  concurrency key (or a paused function), with their score.
"""

from __future__ import annotations

import sqlite3

from agentcmd.engine.store.queue import defer_if_present_txn, make_due_txn

# -- paused functions and skipped events ----------------------------------------------------------

def is_paused_txn(conn: sqlite3.Connection, slug: str) -> bool:
    return conn.execute("SELECT 1 FROM flow_paused WHERE slug=?", (slug,)).fetchone() is not None


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


# -- marks: rate-limit admissions and throttle tats ---------------------------------------------

def count_marks_txn(conn: sqlite3.Connection, key: str, since: int) -> int:
    """Drop ``key``'s marks at or before ``since``; count those after it."""
    conn.execute("DELETE FROM flow_marks WHERE key=? AND at<=?", (key, since))
    return int(conn.execute("SELECT COUNT(*) FROM flow_marks WHERE key=? AND at>?", (key, since)).fetchone()[0])


def add_mark_txn(conn: sqlite3.Connection, key: str, at: int) -> None:
    conn.execute("INSERT INTO flow_marks (key, at) VALUES (?, ?)", (key, at))


def latest_mark_txn(conn: sqlite3.Connection, key: str) -> int | None:
    """The key's latest mark (a throttle key's ``tat``), or None."""
    row = conn.execute("SELECT MAX(at) FROM flow_marks WHERE key=?", (key,)).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else None


def replace_mark_txn(conn: sqlite3.Connection, key: str, at: int) -> None:
    """Keep one mark for ``key``: ``at`` (a throttle key's new ``tat``)."""
    conn.execute("DELETE FROM flow_marks WHERE key=?", (key,))
    conn.execute("INSERT INTO flow_marks (key, at) VALUES (?, ?)", (key, at))


def prune_marks_txn(conn: sqlite3.Connection, prefix: str, before: int) -> int:
    """Delete marks of keys starting with ``prefix`` older than ``before``; returns rows deleted."""
    return int(conn.execute("DELETE FROM flow_marks WHERE key LIKE ? AND at < ?", (prefix + "%", before)).rowcount)


# -- singleton runs --------------------------------------------------------------------------------

def singleton_runs_txn(conn: sqlite3.Connection, key: str) -> list[tuple[str, str | None]]:
    """(run_id, status) of the runs registered under a singleton key; status None if the run is gone."""
    return [(str(r[0]), r[1]) for r in conn.execute(
        "SELECT s.run_id, r.status FROM flow_singleton s LEFT JOIN runs r ON r.run_id = s.run_id "
        "WHERE s.key=?", (key,)).fetchall()]


def forget_singleton_txn(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute("DELETE FROM flow_singleton WHERE run_id=?", (run_id,))


def register_singleton_txn(conn: sqlite3.Connection, key: str, run_id: str) -> None:
    conn.execute("INSERT OR REPLACE INTO flow_singleton (run_id, key) VALUES (?, ?)", (run_id, key))


# -- parked calls (concurrency keys, paused functions) ---------------------------------------------

def park_txn(conn: sqlite3.Connection, item_id: int, key: str, limit: int, score: int, ready_at: int,
             until: int) -> bool:
    """Give a leased row back to the queue until ``until`` and record what it waits for.

    False if the row is gone (its run ended meanwhile): nothing to wait for.
    """
    if not defer_if_present_txn(conn, item_id, until):
        return False
    conn.execute(
        "INSERT INTO flow_waiting (item_id, key, lim, score, ready_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT(item_id) DO UPDATE SET key=excluded.key, lim=excluded.lim",
        (item_id, key, limit, score, ready_at))
    return True


def unpark_txn(conn: sqlite3.Connection, key: str, count: int, now: int) -> list[int]:
    """Make the ``count`` best waiters of ``key`` due again; return their queue ids."""
    out: list[int] = []
    while len(out) < count:
        rows = conn.execute("SELECT item_id, ready_at FROM flow_waiting WHERE key=? ORDER BY score, item_id "
                            "LIMIT ?", (key, count - len(out))).fetchall()
        if not rows:
            break
        for item_id, ready_at in rows:
            conn.execute("DELETE FROM flow_waiting WHERE item_id=?", (item_id,))
            if make_due_txn(conn, int(item_id), min(int(ready_at), now)):
                out.append(int(item_id))
    return out


def recover_txn(conn: sqlite3.Connection) -> int:
    """At startup nothing is in flight: give every key up to its limit of waiters back."""
    total = 0
    for key, lim in conn.execute("SELECT key, MAX(lim) FROM flow_waiting GROUP BY key").fetchall():
        total += len(unpark_txn(conn, str(key), int(lim), 2**62))
    return total


def waiting_keys_txn(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT DISTINCT key FROM flow_waiting")}
