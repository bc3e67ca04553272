"""Retention's SQL: which finished runs and old events may go, deleting them in small batches, freeing pages.

The policy (how old, how often, how big a batch, when to yield) is
``agentcmd.engine.retention``; these functions only select and delete, each
inside the caller's write transaction (``Database.write``), never committing.

What goes, per run: the ``runs`` row of a finished run (Completed, Failed,
Cancelled, Skipped) that ended before the cut-off, with its ``steps``,
``history``, ``queue`` rows (a finished run has none left; a trigger drops
their ``flow_waiting`` rows), ``pauses`` and ``flow_singleton`` row. A
finished run is kept anyway while:

* its idempotency key still counts (created in the last 24 h), or
* it was started by ``step.invoke`` and the invoking run has not ended, or
* a run that is kept names it as the run it replays (``replay_of``) or, once
  that column exists (migration 0009), resumes (``resume_of``): the kept
  run's page links to it. A replay that goes in the same pass frees it.

Events go when they were received before the cut-off and nothing kept needs
them: no kept run was started by them (``runs.event_id``), no queue row
still dispatches them (``event``, ``debounce``, ``batch`` payloads), and the
sender's ``id`` no longer counts for idempotency (24 h). Their
``flow_skips`` rows go with them. Runs that are in flight, sleeping,
waiting for an event, parked on a concurrency key or a paused function, or
waiting for their app are never selected: their status is not final.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from agentcmd.engine.store.events import IDEMPOTENCY_WINDOW_MS
from agentcmd.engine.store.models import RunStatus

FINISHED = tuple(s.value for s in RunStatus if s.final)
_IN_FINISHED = ",".join("?" * len(FINISHED))
_RUN_TABLES = ("steps", "history", "queue", "pauses", "flow_singleton")


@dataclass
class PruneCounts:
    """Rows removed (or, in a dry run, that would be), by table, and the bytes of data they held."""

    runs: int = 0
    steps: int = 0
    history: int = 0
    queue: int = 0
    pauses: int = 0
    flow_singleton: int = 0
    events: int = 0
    flow_skips: int = 0
    data_bytes: int = 0
    """The length of the rows' text (memos, outputs, event bodies, history): about what the rows held."""

    def add(self, other: PruneCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def rows(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self) if f.name != "data_bytes")

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


@dataclass
class Cursor:
    """Keyset position of a pass: (ended_at, run_id) of the last run looked at, same for events."""

    run: tuple[int, str] = (-1, "")
    event: tuple[int, str] = (-1, "")
    queued_events: set[str] | None = None
    gone_runs: set[str] = field(default_factory=set)
    """Dry run: runs counted as gone (they still exist, but must not keep their events or originals)."""


def prepare_new_database(conn: sqlite3.Connection) -> None:
    """A brand-new file gets ``auto_vacuum=INCREMENTAL`` (only possible before its first table exists).

    Then pruning can give pages back to the file system a few at a time
    (``vacuum_step_txn``) instead of needing a full ``VACUUM``, which
    rewrites the whole file under an exclusive lock. Must run before the
    journal mode is set: switching to WAL writes the header.
    """
    if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")


def _link_columns(conn: sqlite3.Connection) -> list[str]:
    """``replay_of`` and, once migration 0009 added it, ``resume_of``: only when an index leads with it
    (a lookup per pruned run must not scan ``runs``)."""
    out = []
    for column in ("replay_of", "resume_of"):
        indexed = conn.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND tbl_name='runs' AND "
                               "REPLACE(sql, ' ', '') LIKE ?", (f"%runs({column}%",)).fetchone()
        if indexed is not None:
            out.append(column)
    return out


def run_batch_txn(conn: sqlite3.Connection, cutoff: int, now: int, limit: int, cursor: Cursor,
                  dry_run: bool) -> tuple[PruneCounts, int]:
    """Prune (or count) up to ``limit`` finished runs that ended before ``cutoff``, after ``cursor.run``.

    Returns (counts, runs looked at); 0 looked at means the pass is through the runs.
    """
    rows = conn.execute(
        f"SELECT run_id, ended_at, parent, idem_key, created_at FROM runs WHERE ended_at < ? AND "
        f"(ended_at > ? OR (ended_at = ? AND run_id > ?)) AND status IN ({_IN_FINISHED}) "
        "ORDER BY ended_at, run_id LIMIT ?",
        (cutoff, cursor.run[0], cursor.run[0], cursor.run[1], *FINISHED, limit)).fetchall()
    if not rows:
        return PruneCounts(), 0
    cursor.run = (int(rows[-1][1]), str(rows[-1][0]))
    links = _link_columns(conn)
    batch = {str(r[0]) for r in rows}
    doomed = [str(r[0]) for r in rows
              if not _run_is_kept(conn, str(r[0]), r[2], r[3], int(r[4]), cutoff, now, links, batch, cursor)]
    counts = _delete_runs(conn, doomed, dry_run)
    if dry_run:
        cursor.gone_runs.update(doomed)
    return counts, len(rows)


def _run_is_kept(conn: sqlite3.Connection, run_id: str, parent: str | None, idem_key: str | None, created_at: int,
                 cutoff: int, now: int, links: list[str], batch: set[str], cursor: Cursor) -> bool:
    if idem_key is not None and created_at >= now - IDEMPOTENCY_WINDOW_MS:
        return True
    if parent:
        row = conn.execute("SELECT status FROM runs WHERE run_id=?", (parent.split(".", 1)[0],)).fetchone()
        if row is not None and row[0] not in FINISHED:
            return True
    for column in links:
        for (other, status, ended_at) in conn.execute(
                f"SELECT run_id, status, ended_at FROM runs WHERE {column}=?", (run_id,)):
            going = other in batch or other in cursor.gone_runs or (
                status in FINISHED and ended_at is not None and int(ended_at) < cutoff)
            if not going:
                return True
    return False


def _in(ids: list[str]) -> str:
    return ",".join("?" * len(ids))


def _delete_runs(conn: sqlite3.Connection, run_ids: list[str], dry_run: bool) -> PruneCounts:
    counts = PruneCounts()
    if not run_ids:
        return counts
    marks = _in(run_ids)
    counts.data_bytes = int(conn.execute(
        f"SELECT COALESCE(SUM(LENGTH(first_event) + LENGTH(events) + COALESCE(LENGTH(output), 0) + "
        f"COALESCE(LENGTH(error), 0)), 0) FROM runs WHERE run_id IN ({marks})", run_ids).fetchone()[0])
    counts.data_bytes += int(conn.execute(
        f"SELECT COALESCE(SUM(LENGTH(memo)), 0) FROM steps WHERE run_id IN ({marks})", run_ids).fetchone()[0])
    counts.data_bytes += int(conn.execute(
        f"SELECT COALESCE(SUM(COALESCE(LENGTH(detail), 0) + 32), 0) FROM history WHERE run_id IN ({marks})",
        run_ids).fetchone()[0])
    for table in _RUN_TABLES:
        if dry_run:
            n = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id IN ({marks})", run_ids).fetchone()[0]
        else:
            n = conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", run_ids).rowcount
        setattr(counts, table, int(n))
    if dry_run:
        counts.runs = len(run_ids)
    else:
        counts.runs = conn.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", run_ids).rowcount
    return counts


def queued_event_ids_txn(conn: sqlite3.Connection) -> set[str]:
    """Events a queue row still refers to (dispatch rows, debounce and batch buffers): never pruned."""
    rows = conn.execute("SELECT json_extract(payload, '$.event_id') FROM queue WHERE kind IN "
                        "('event', 'debounce', 'batch')").fetchall()
    return {str(r[0]) for r in rows if r[0] is not None}


def event_batch_txn(conn: sqlite3.Connection, cutoff: int, now: int, limit: int, cursor: Cursor,
                    dry_run: bool) -> tuple[PruneCounts, int]:
    """Prune (or count) up to ``limit`` events received before ``cutoff`` that nothing kept needs.

    Returns (counts, events looked at); 0 looked at means the pass is through the events.
    """
    if cursor.queued_events is None:
        cursor.queued_events = queued_event_ids_txn(conn)
    rows = conn.execute(
        "SELECT internal_id, received_at, user_id FROM events WHERE received_at < ? AND "
        "(received_at > ? OR (received_at = ? AND internal_id > ?)) ORDER BY received_at, internal_id LIMIT ?",
        (cutoff, cursor.event[0], cursor.event[0], cursor.event[1], limit)).fetchall()
    if not rows:
        return PruneCounts(), 0
    cursor.event = (int(rows[-1][1]), str(rows[-1][0]))
    doomed = []
    for internal_id, received_at, user_id in rows:
        if internal_id in cursor.queued_events:
            continue
        if user_id and int(received_at) >= now - IDEMPOTENCY_WINDOW_MS:
            continue
        users = [str(r[0]) for r in conn.execute("SELECT run_id FROM runs WHERE event_id=?", (internal_id,))]
        if any(u not in cursor.gone_runs for u in users):
            continue
        doomed.append(str(internal_id))
    counts = PruneCounts()
    if doomed:
        marks = _in(doomed)
        counts.data_bytes = int(conn.execute(
            f"SELECT COALESCE(SUM(LENGTH(body)), 0) FROM events WHERE internal_id IN ({marks})", doomed).fetchone()[0])
        if dry_run:
            counts.flow_skips = int(conn.execute(
                f"SELECT COUNT(*) FROM flow_skips WHERE event_id IN ({marks})", doomed).fetchone()[0])
            counts.events = len(doomed)
        else:
            counts.flow_skips = conn.execute(f"DELETE FROM flow_skips WHERE event_id IN ({marks})", doomed).rowcount
            counts.events = conn.execute(f"DELETE FROM events WHERE internal_id IN ({marks})", doomed).rowcount
    return counts, len(rows)


def vacuum_step_txn(conn: sqlite3.Connection, pages: int, budget_ms: float) -> int:
    """Give up to ``pages`` free pages back to the file system (``auto_vacuum=INCREMENTAL`` only).

    Python's sqlite3 steps a statement once per ``execute``, and each step of
    ``incremental_vacuum`` frees one page, so this asks for one page at a
    time: a few microseconds for a free page at the end of the file, more
    when a page in use must move into the hole first. It stops after
    ``budget_ms``. Returns the pages freed.
    """
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        return 0
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    deadline = time.perf_counter() + budget_ms / 1000
    for i in range(min(free, pages)):
        conn.execute("PRAGMA incremental_vacuum(1)")
        if i % 16 == 15 and time.perf_counter() > deadline:
            break
    return free - int(conn.execute("PRAGMA freelist_count").fetchone()[0])


@dataclass(frozen=True)
class StorageStats:
    """What ``GET /v1/storage`` and the dashboard show about the database."""

    path: str | None
    page_size: int
    page_count: int
    freelist_count: int
    auto_vacuum: str
    file_bytes: int
    wal_bytes: int
    runs: int
    oldest_run_id: str | None
    oldest_run_created_at: int | None
    oldest_run_status: str | None

    @property
    def size_bytes(self) -> int:
        """The database's size in pages (what the file holds once the WAL is checkpointed)."""
        return self.page_count * self.page_size

    @property
    def used_bytes(self) -> int:
        return (self.page_count - self.freelist_count) * self.page_size

    @property
    def free_bytes(self) -> int:
        return self.freelist_count * self.page_size


_AUTO_VACUUM = {0: "none", 1: "full", 2: "incremental"}


def storage_stats(conn: sqlite3.Connection, path: Path | None, count_runs: bool = True) -> StorageStats:
    """Size, free pages, run count and the oldest kept run (its ULID sorts first).

    ``COUNT(*)`` walks the smallest index of ``runs``: a few ms per 100,000 runs
    (``count_runs=False``: -1, for a pruning pass, which only needs the sizes).
    """
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
    freelist = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    auto_vacuum = _AUTO_VACUUM.get(int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]), "none")
    runs = int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]) if count_runs else -1
    oldest = conn.execute("SELECT run_id, created_at, status FROM runs ORDER BY run_id LIMIT 1").fetchone()
    file_bytes = wal_bytes = 0
    if path is not None:
        file_bytes = _size(path)
        wal_bytes = _size(path.with_name(path.name + "-wal"))
    else:
        file_bytes = page_count * page_size
    return StorageStats(None if path is None else str(path), page_size, page_count, freelist, auto_vacuum,
                        file_bytes, wal_bytes, runs,
                        None if oldest is None else str(oldest[0]),
                        None if oldest is None else int(oldest[1]),
                        None if oldest is None else str(oldest[2]))


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def convert_to_incremental(conn: sqlite3.Connection) -> None:
    """Switch an older database (``auto_vacuum=none``) to ``INCREMENTAL``: one full ``VACUUM``.

    It rewrites the whole file (and needs about as much free disk), holding
    an exclusive lock throughout: only for a database no engine is using
    (``agentcmd engine prune --vacuum``).
    """
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("VACUUM")
