"""The app server's record of webhook deliveries: a repeated delivery id starts nothing twice.

GitHub and Linear redeliver (a timeout on their side, a "Redeliver"
click), and anyone who captured a signed request can replay it: the
signature is still valid. So every accepted delivery id is kept in
``<data dir>/webhooks/deliveries.sqlite3`` (0600 in a 0700 directory),
which outlives app server restarts. The engine's own idempotency (the
event id ``<source>-<delivery id>``, honoured for 24 hours) is the second
line, for the moment between the record and the event.

A delivery is first *claimed* (an atomic insert, so two copies arriving at
once cannot both pass), then marked *sent* once the engine has the event.
If the send fails the claim is released, so the sender's retry is not
mistaken for a duplicate; a claim left by a crash between the two is sent
again on the next copy (the engine drops the second event by its id).
Records older than ``KEEP_DAYS`` are pruned when the store opens.

Calls are synchronous SQLite: the routes run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from enum import StrEnum
from pathlib import Path

from agentcmd.privatefs import ensure_private_dir, ensure_private_file

KEEP_DAYS = 90
_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    source TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    sent_at INTEGER,
    PRIMARY KEY (source, delivery_id)
) WITHOUT ROWID
"""


class Claim(StrEnum):
    NEW = "new"          # first time seen: send it
    PENDING = "pending"  # claimed before, never confirmed sent (a crash, or a copy in flight): send again
    SENT = "sent"        # the engine has it: a duplicate


class DeliveryStore:
    """One SQLite file; one connection guarded by a lock (the routes call it from worker threads)."""

    def __init__(self, path: Path) -> None:
        ensure_private_dir(path.parent)
        ensure_private_file(path)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._conn.execute("DELETE FROM deliveries WHERE received_at < ?",
                           (_now_ms() - KEEP_DAYS * 86_400_000,))
        for suffix in ("-wal", "-shm"):   # SQLite creates them with the umask's mode
            side = path.with_name(path.name + suffix)
            if side.exists():
                ensure_private_file(side)

    @classmethod
    def under(cls, data_dir: Path) -> DeliveryStore:
        return cls(data_dir / "webhooks" / "deliveries.sqlite3")

    def claim(self, source: str, delivery_id: str, event_name: str) -> Claim:
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO deliveries (source, delivery_id, event_name, received_at) VALUES (?,?,?,?) "
                "ON CONFLICT DO NOTHING", (source, delivery_id, event_name, _now_ms()))
            if cur.rowcount == 1:
                return Claim.NEW
            row = self._conn.execute("SELECT sent_at FROM deliveries WHERE source=? AND delivery_id=?",
                                     (source, delivery_id)).fetchone()
        return Claim.SENT if row is not None and row[0] is not None else Claim.PENDING

    def mark_sent(self, source: str, delivery_id: str) -> None:
        with self._lock:
            self._conn.execute("UPDATE deliveries SET sent_at=? WHERE source=? AND delivery_id=?",
                               (_now_ms(), source, delivery_id))

    def release(self, source: str, delivery_id: str) -> None:
        """Forget a claim whose event never reached the engine, so the sender's retry goes through."""
        with self._lock:
            self._conn.execute("DELETE FROM deliveries WHERE source=? AND delivery_id=? AND sent_at IS NULL",
                               (source, delivery_id))

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _now_ms() -> int:
    return int(time.time() * 1000)
