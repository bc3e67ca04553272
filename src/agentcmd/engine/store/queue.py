"""The queue table: lease due rows, give them back, insert, move and delete them.

Every ``*_txn(conn, ...)`` in the store runs inside ``Database.write`` (one
``BEGIN IMMEDIATE`` shared with other callers) and never commits, so "store
the step's memo + enqueue the next call + ack the current item" is a single
commit (DESIGN: commit before calling out). Nothing here performs I/O other
than SQL.

Items that are ready now and that the caller will run at once are inserted
already leased (``lease``), so the hot path makes one transaction per step,
not two.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from agentcmd.engine.store.models import DISCOVERY, NewItem, QueueItem, QueueKind, dumps

ITEM_COLS = "id, kind, run_id, step_id, ready_at, attempt, payload"


def item_from_row(row: tuple[Any, ...]) -> QueueItem:
    return QueueItem(int(row[0]), QueueKind(row[1]), row[2], row[3], int(row[4]), int(row[5]),
                     json.loads(row[6]) if row[6] else {})


EVENT_SHARE = 8    # 1/EVENT_SHARE of each lease is kept for new events' dispatch


def lease_due_txn(conn: sqlite3.Connection, now: int, limit: int, lease_until: int) -> list[QueueItem]:
    """Lease up to ``limit`` due, unleased items: runs' own work first, then new events.

    Two lanes, each oldest first (index ``queue_by_lane``, migration 0007):
    the work of runs that exist (next calls, sleep wake-ups, timeouts,
    retries, timers) and the dispatch of accepted events. Taking the first
    lane first keeps a flood of 10,000 events from delaying a sleep that is
    due now behind every event accepted before it; an eighth of each lease
    (``EVENT_SHARE``) still goes to events so new runs keep starting while
    existing runs are busy. Within a lane, order is ``ready_at`` then id.
    """
    share = min(limit // EVENT_SHARE, limit)
    events = _lease_lane(conn, True, now, share, lease_until) if share else []
    runs = _lease_lane(conn, False, now, limit - len(events), lease_until)
    if len(events) + len(runs) < limit and len(events) == share:
        events += _lease_lane(conn, True, now, limit - len(events) - len(runs), lease_until)
    return runs + events


def _lease_lane(conn: sqlite3.Connection, events: bool, now: int, limit: int,
                lease_until: int) -> list[QueueItem]:
    if limit <= 0:
        return []
    rows = conn.execute(
        f"UPDATE queue SET lease_until=?, dedupe=NULL WHERE id IN (SELECT id FROM queue WHERE lease_until IS NULL "
        f"AND (kind = 'event') = ? AND ready_at<=? ORDER BY ready_at, id LIMIT ?) RETURNING {ITEM_COLS}",
        (lease_until, int(events), now, limit)).fetchall()
    return sorted((item_from_row(r) for r in rows), key=lambda i: (i.ready_at, i.id))


def requeue_leases_txn(conn: sqlite3.Connection, expired_before: int | None) -> int:
    """Free leased items (all of them at startup, else those whose lease ran out)."""
    if expired_before is None:
        cur = conn.execute("UPDATE queue SET lease_until=NULL WHERE lease_until IS NOT NULL")
    else:
        cur = conn.execute("UPDATE queue SET lease_until=NULL WHERE lease_until IS NOT NULL AND lease_until<?",
                           (expired_before,))
    return cur.rowcount


def release_leases_txn(conn: sqlite3.Connection, item_ids: list[int]) -> None:
    """Give leased items back to the queue as they are (same ``ready_at`` and attempt): due again now."""
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start:start + 500]
        conn.execute(f"UPDATE queue SET lease_until=NULL WHERE id IN ({','.join('?' * len(chunk))})", chunk)


def enqueue_txn(conn: sqlite3.Connection, run_id: str | None, item: NewItem,
                lease_until: int | None = None) -> QueueItem | None:
    """Insert one item; with a ``dedupe`` key already queued, nothing is inserted (None)."""
    row = conn.execute(
        f"INSERT INTO queue (kind, run_id, step_id, ready_at, lease_until, attempt, payload, dedupe) "
        f"VALUES (?,?,?,?,?,0,?,?) ON CONFLICT(dedupe) DO NOTHING RETURNING {ITEM_COLS}",
        (item.kind.value, run_id, item.step_id, item.ready_at, lease_until, dumps(item.payload),
         item.dedupe)).fetchone()
    return item_from_row(row) if row is not None else None


def upsert_timer_txn(conn: sqlite3.Connection, item: NewItem) -> None:
    """Insert or move a keyed timer (debounce): the newest payload and ready time win."""
    conn.execute(
        "INSERT INTO queue (kind, run_id, step_id, ready_at, payload, dedupe) VALUES (?,?,?,?,?,?) "
        "ON CONFLICT(dedupe) DO UPDATE SET ready_at=excluded.ready_at, payload=excluded.payload",
        (item.kind.value, None, item.step_id, item.ready_at, dumps(item.payload), item.dedupe))


def defer_txn(conn: sqlite3.Connection, item_id: int, ready_at: int) -> None:
    """Give a leased item back to the queue, due at ``ready_at``, same attempt."""
    conn.execute("UPDATE queue SET lease_until=NULL, ready_at=? WHERE id=?", (ready_at, item_id))


def retry_later_txn(conn: sqlite3.Connection, item_id: int, ready_at: int) -> None:
    """Give a leased item back to the queue, due at ``ready_at``, as its next attempt."""
    conn.execute("UPDATE queue SET lease_until=NULL, ready_at=?, attempt=attempt+1 WHERE id=?", (ready_at, item_id))


def ack_txn(conn: sqlite3.Connection, item_id: int) -> bool:
    """Done with an item. True if, while it was out, a discovery was asked for that it may not have seen."""
    row = conn.execute("DELETE FROM queue WHERE id=? RETURNING json_extract(payload, '$.again')",
                       (item_id,)).fetchone()
    return bool(row is not None and row[0])


def request_discovery_txn(conn: sqlite3.Connection, run_id: str, now: int,
                          lease_until: int | None) -> QueueItem | None:
    """Queue a call of the run's body, once; None if one is queued already.

    A discovery already *out* (leased) was sent the state from before this
    request: it is marked so that its ack (``ack_txn``) asks for one more
    instead of the request being lost (race-mode branches end while the
    body runs; see ``runs.apply_outcome_txn``).
    """
    dedupe = f"disc:{run_id}"
    new = enqueue_txn(conn, run_id, NewItem(QueueKind.STEP, DISCOVERY, now, dedupe=dedupe), lease_until)
    if new is None:
        conn.execute("UPDATE queue SET payload=json_set(payload, '$.again', 1) "
                     "WHERE dedupe=? AND lease_until IS NOT NULL", (dedupe,))
    return new


def keyed_item_txn(conn: sqlite3.Connection, dedupe: str) -> tuple[int, dict[str, Any]] | None:
    """(id, payload) of the row queued under ``dedupe`` (a debounce or batch buffer), or None."""
    row = conn.execute("SELECT id, payload FROM queue WHERE dedupe=?", (dedupe,)).fetchone()
    return (int(row[0]), json.loads(row[1])) if row is not None else None


def set_payload_txn(conn: sqlite3.Connection, item_id: int, payload: dict[str, Any]) -> None:
    conn.execute("UPDATE queue SET payload=? WHERE id=?", (dumps(payload), item_id))


def release_held_txn(conn: sqlite3.Connection, now: int) -> None:
    """Make every held event due now (only ``Dispatcher``'s hold pushes an event row into the future)."""
    conn.execute("UPDATE queue SET ready_at=? WHERE kind=? AND lease_until IS NULL AND ready_at>?",
                 (now, QueueKind.EVENT.value, now))


def defer_if_present_txn(conn: sqlite3.Connection, item_id: int, ready_at: int) -> bool:
    """``defer_txn`` for a row that may be gone (its run ended meanwhile): False if it was."""
    return conn.execute("UPDATE queue SET lease_until=NULL, ready_at=? WHERE id=?", (ready_at, item_id)).rowcount == 1


def make_due_txn(conn: sqlite3.Connection, item_id: int, ready_at: int) -> bool:
    """Move an unleased row's due time (a parked call let go); False if it is gone or leased."""
    return conn.execute("UPDATE queue SET ready_at=? WHERE id=? AND lease_until IS NULL",
                        (ready_at, item_id)).rowcount == 1


def extend_lease_txn(conn: sqlite3.Connection, item_id: int, lease_until: int) -> bool:
    """A call that is still running (a connect worker keeps extending its lease) keeps its row; False if gone."""
    return conn.execute("UPDATE queue SET lease_until=? WHERE id=? AND lease_until IS NOT NULL",
                        (lease_until, item_id)).rowcount == 1


def interrupt_lease_txn(conn: sqlite3.Connection, item_id: int, now: int) -> bool:
    """The engine stopped during this row's call: free it, due now, same attempt; False if it was not leased."""
    return conn.execute("UPDATE queue SET lease_until=NULL, ready_at=? WHERE id=? AND lease_until IS NOT NULL "
                        "RETURNING id", (now, item_id)).fetchone() is not None


def leased_calls_txn(conn: sqlite3.Connection) -> list[tuple[str, str | None, int]]:
    """(run, step, attempt) of every SDK call row still leased: at startup, the calls a previous process cut."""
    rows = conn.execute("SELECT run_id, step_id, attempt FROM queue WHERE lease_until IS NOT NULL AND kind IN (?,?) "
                        "AND run_id IS NOT NULL", (QueueKind.START.value, QueueKind.STEP.value)).fetchall()
    return [(str(r[0]), r[1], int(r[2])) for r in rows]


def drop_run_items_txn(conn: sqlite3.Connection, run_id: str) -> None:
    """A run ended: nothing of it stays queued (its next calls, sleeps, timeouts)."""
    conn.execute("DELETE FROM queue WHERE run_id=?", (run_id,))


def drop_step_items_txn(conn: sqlite3.Connection, run_id: str, step_id: str, kind: QueueKind) -> None:
    """A step's row of one kind is moot (a wait resolved before its timeout)."""
    conn.execute("DELETE FROM queue WHERE run_id=? AND step_id=? AND kind=?", (run_id, step_id, kind.value))


def drop_crons_txn(conn: sqlite3.Connection, slug: str) -> None:
    """Every cron row of a function (archived, or its schedules about to be replaced)."""
    conn.execute("DELETE FROM queue WHERE kind=? AND (dedupe LIKE ? OR payload LIKE ?)",
                 (QueueKind.CRON.value, f"cron:{slug}:%", f'%"function":{json.dumps(slug)}%'))
