"""The events table: store received events (idempotent by sender id) and queue their dispatch."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from agentcmd.engine.store.models import NewEvent, NewItem, QueueItem, QueueKind, dumps
from agentcmd.engine.store.queue import enqueue_txn

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000


def insert_events_txn(conn: sqlite3.Connection, events: Iterable[NewEvent], now: int,
                      dispatch: bool = True, leased: list[QueueItem] | None = None,
                      lease_until: int | None = None) -> list[str]:
    """Store events and queue their dispatch; return their internal ids.

    An event whose sender ``id`` was already seen within 24 h is not stored
    again: its first internal id is returned and no run starts twice. With
    ``leased`` and ``lease_until`` the dispatch rows are inserted already
    leased and appended to ``leased`` for the caller to run at once.
    """
    ids: list[str] = []
    for ev in events:
        if ev.user_id:
            row = conn.execute(
                "SELECT internal_id FROM events WHERE user_id=? AND name=? AND received_at>=? LIMIT 1",
                (ev.user_id, ev.name, now - IDEMPOTENCY_WINDOW_MS)).fetchone()
            if row is not None:
                ids.append(str(row[0]))
                continue
        cur = conn.execute(
            "INSERT INTO events (internal_id, name, body, user_id, ts, received_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(internal_id) DO NOTHING", (ev.internal_id, ev.name, dumps(ev.body), ev.user_id, ev.ts, now))
        if cur.rowcount == 0:
            # A client retry with the same x-inngest-event-id-seed: same ids, already stored and dispatched.
            ids.append(ev.internal_id)
            continue
        if dispatch and _needs_dispatch(conn, ev):
            item = enqueue_txn(conn, None, NewItem(QueueKind.EVENT, None, now, {"event_id": ev.internal_id}),
                               lease_until if leased is not None else None)
            if leased is not None and item is not None:
                leased.append(item)
        ids.append(ev.internal_id)
    return ids


def _needs_dispatch(conn: sqlite3.Connection, ev: NewEvent) -> bool:
    """Skip matching for internal events nobody listens to (every run ends with one or two).

    User events are always dispatched; so are ``function.invoked`` (it starts
    the invoked run), an event that resolves an invoke (it carries a
    correlation id) and one that some pause waits for.
    """
    flt = getattr(conn, "dispatch_filter", None)
    if flt is None or not ev.name.startswith("inngest/") or ev.name == "inngest/function.invoked" or flt(ev.name):
        return True
    if (ev.body.get("data") or {}).get("correlation_id"):
        return True
    return conn.execute("SELECT 1 FROM pauses WHERE event_name=? LIMIT 1", (ev.name,)).fetchone() is not None
