"""The engine's state behind small Protocols; one SQLite implementation.

* ``QueueStore``: lease due items, requeue expired leases, know when the next is due.
* ``RunWriter``: commands that change runs (create, apply an SDK answer, cancel).
* ``HistoryReader``: queries (``store/queries``), the public read path every
  reader (REST, GraphQL, the dashboard, the CLI) goes through.

Every SQL statement of the engine lives in this package. The write side
is split by noun; each module holds ``*_txn(conn, ...)`` functions that
run inside a caller's write transaction and never commit:

* ``runs.py``: runs, their steps (memos), history and pauses; creating,
  applying an SDK answer, finishing and cancelling runs.
* ``events.py``: received events and their dispatch rows.
* ``queue.py``: the queue table: lease, enqueue, ack, defer, release,
  retry, keyed timers (debounce, batch) and held events.
* ``apps.py``: apps and functions rows, cron rows of (archived) functions.
* ``flow.py``: flow-control tables (paused functions, skipped events,
  rate-limit and throttle marks, singleton runs, parked calls). The
  policy (keys, GCRA, decisions) is ``agentcmd.engine.flow``, which calls
  these; the store never imports it.
* ``waits.py``: interrupted calls and runs waiting for their app.
* ``sqlite.py`` / ``walsync.py`` / ``checkpoint.py``: the database itself.
* ``backup.py``: online backups and checked restores of the file (``agentcmd backup`` / ``restore``).

``open_store(path)``: ``None`` = in memory (dev, gone on exit), a path = a
WAL file (production, survives restarts and crashes). Same code otherwise.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from agentcmd.engine.store import apps, events, flow, queries, queue, runs
from agentcmd.engine.store.events import insert_events_txn
from agentcmd.engine.store.flow import recover_txn
from agentcmd.engine.store.models import (
    CallContext,
    NewEvent,
    Outcome,
    QueueItem,
    RunSpec,
)
from agentcmd.engine.store.queue import lease_due_txn, requeue_leases_txn
from agentcmd.engine.store.runs import apply_outcome_txn, cancel_run_txn, create_runs_txn, load_context_txn
from agentcmd.engine.store.sqlite import Database

T = TypeVar("T")
DispatchTxn = Callable[[sqlite3.Connection, list[QueueItem]], tuple[list[CallContext], list[QueueItem]]]
"""Dispatch event rows inside a transaction: (first calls leased, rows left to the worker)."""
log = logging.getLogger("agentcmd.engine.store")
DB_FILE_NAME = "engine.db"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class QueueStore(Protocol):
    async def lease_due(self, now: int, limit: int, lease_until: int) -> list[QueueItem]:
        """Lease up to ``limit`` items due at ``now``; leased items are invisible to others."""
        ...

    async def requeue_leases(self, expired_before: int | None) -> int:
        """Free leases that ran out (``None``: every lease, used once at startup)."""
        ...

    async def next_ready_at(self) -> int | None:
        """When the earliest unleased item is due, or None if the queue is empty."""
        ...


class RunWriter(Protocol):
    async def insert_events(self, events: list[NewEvent]) -> list[str]:
        """Store events and queue their dispatch, in one commit; returns internal ids."""
        ...

    async def create_runs(self, specs: list[RunSpec], lease_until: int | None) -> list[QueueItem]:
        """Create runs with their first call queued (leased to the caller if ``lease_until``)."""
        ...

    async def apply_outcome(self, run_id: str, item: QueueItem | None, outcome: Outcome,
                            lease_until: int | None) -> list[CallContext]:
        """Memo + next items + ack in one commit; returns calls leased to the caller."""
        ...

    async def cancel_run(self, run_id: str, reason: str) -> bool | None:
        """Cancel; None if unknown, False if already ended."""
        ...


class HistoryReader(Protocol):
    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a ``queries`` function on a read connection."""
        ...


class Store:
    """SQLite implementation of QueueStore, RunWriter and HistoryReader.

    Each method is one transaction over the noun modules (``queue``,
    ``events``, ``runs``, ``flow``); callers that must combine several
    changes in one commit call their ``*_txn`` functions inside ``write``.
    Reads go through ``queries`` (the public read path).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def in_memory(self) -> bool:
        return self.db.in_memory

    def describe(self) -> str:
        return self.db.describe()

    def close(self) -> None:
        self.db.close()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.db.read(fn)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.db.write(fn)

    # QueueStore
    async def lease_due(self, now: int, limit: int, lease_until: int) -> list[QueueItem]:
        return await self.db.write(lambda c: lease_due_txn(c, now, limit, lease_until))

    async def requeue_leases(self, expired_before: int | None) -> int:
        def txn(conn: sqlite3.Connection) -> int:
            if expired_before is None:
                recover_txn(conn)   # nothing is in flight at startup: calls parked on full keys resume
            return requeue_leases_txn(conn, expired_before)

        return await self.db.write(txn)

    async def next_ready_at(self) -> int | None:
        return await self.db.read(queries.next_ready_at)

    # RunWriter
    async def insert_events(self, events: list[NewEvent]) -> list[str]:
        now = now_ms()
        return await self.db.write(lambda c: insert_events_txn(c, events, now))

    async def accept_events(self, events: list[NewEvent], lease_until: int, dispatch: DispatchTxn | None = None
                            ) -> tuple[list[str], list[QueueItem], list[CallContext]]:
        """Store events with their dispatch rows leased to the caller: (ids, rows to dispatch, first calls).

        With ``dispatch`` (``Dispatcher.dispatch_accepted_txn``) the rows are
        dispatched by a second job of the same commit, so one flush covers the
        events, their runs and the runs' first calls, which come back leased.
        If that job fails, its savepoint undoes it alone: the events stay
        stored and all their rows come back for the worker to dispatch.
        """
        now = now_ms()
        leased: list[QueueItem] = []
        stored_in_txn = False

        def store_txn(conn: sqlite3.Connection) -> list[str]:
            nonlocal stored_in_txn
            ids = insert_events_txn(conn, events, now, leased=leased, lease_until=lease_until)
            stored_in_txn = True
            return ids

        def dispatch_txn(conn: sqlite3.Connection) -> tuple[list[CallContext], list[QueueItem]]:
            assert dispatch is not None
            # Only after the events' own job succeeded: its savepoint may have undone rows listed in ``leased``.
            return dispatch(conn, list(leased)) if stored_in_txn else ([], [])

        stored = self.db.write(store_txn)
        inline = self.db.write(dispatch_txn) if dispatch is not None else None
        try:
            ids = await stored
        except BaseException:
            if inline is not None:      # the same commit failed it too: nothing to report twice
                inline.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise
        if inline is None:
            return ids, leased, []
        try:
            contexts, rest = await inline
        except Exception:
            log.exception("dispatching accepted events in their own commit failed; the worker dispatches them")
            return ids, leased, []
        return ids, rest, contexts

    async def create_runs(self, specs: list[RunSpec], lease_until: int | None) -> list[QueueItem]:
        now = now_ms()
        return await self.db.write(lambda c: create_runs_txn(c, specs, now, lease_until))

    async def apply_outcome(self, run_id: str, item: QueueItem | None, outcome: Outcome,
                            lease_until: int | None) -> list[CallContext]:
        now = now_ms()

        def txn(conn: sqlite3.Connection) -> list[CallContext]:
            leased = apply_outcome_txn(conn, run_id, item, outcome, now, lease_until)
            return load_contexts(conn, leased)

        return await self.db.write(txn)

    async def cancel_run(self, run_id: str, reason: str) -> bool | None:
        now = now_ms()
        return await self.db.write(lambda c: cancel_run_txn(c, run_id, now, reason))

    async def load_contexts(self, items: list[QueueItem]) -> list[CallContext]:
        return await self.db.read(lambda c: load_contexts(c, items))


def load_contexts(conn: sqlite3.Connection, items: list[QueueItem]) -> list[CallContext]:
    out = []
    for item in items:
        ctx = load_context_txn(conn, item)
        if ctx is not None:
            out.append(ctx)
    return out


def open_store(path: Path | None) -> Store:
    """Open (creating and migrating) the store: ``None`` in memory, else a WAL file."""
    db = Database(path)
    db.open()
    return Store(db)


__all__ = [
    "DB_FILE_NAME",
    "HistoryReader",
    "QueueStore",
    "RunWriter",
    "Store",
    "apps",
    "events",
    "flow",
    "now_ms",
    "open_store",
    "queries",
    "queue",
    "runs",
]
