"""SQLite access: one connection, commits grouped per event-loop turn.

Measured on this machine class before settling (CONVENTIONS asks for it):
a WAL commit with ``synchronous=NORMAL`` costs ~0.02 ms when run inline,
but the same commit handed to a writer thread and awaited back costs far
more, because every hand-off is two GIL switches, and under load the
writer waits for the busy loop thread to give the GIL up. The engine's
transactions are all small (one step's memo, the next queue row, the
ack), so they run on the event-loop thread itself:

* ``write(fn)`` queues ``fn`` and schedules one flush for the current loop
  turn. The flush runs *every* queued ``fn`` in one ``BEGIN IMMEDIATE``
  transaction, each under its own SAVEPOINT (one failing call does not undo
  the others), commits once, then resolves the callers' futures. 32 runs
  moving at once share a commit; a lone step still commits before its
  caller continues (commit before calling out).
* ``read(fn)`` runs ``fn`` at once on the same connection; no transaction
  of ours is ever open between loop turns, so it sees committed state.

Two modes, one code path:

* ``memory``: ``file:agentcmd-<uuid>?mode=memory&cache=shared``. The
  connection is kept open for the life of the database (closing the last
  connection deletes an in-memory database). Because all access goes
  through this one connection, shared-cache table locks ("database table
  is locked") cannot happen.
* ``file``: WAL journal, commits with ``synchronous=NORMAL`` (no fsync on
  the loop), then an fsync of the WAL on a thread of its own
  (``walsync.py``) before ``write()``'s future resolves. Every
  acknowledgement the engine gives (the 200 of ``POST /e``, the next SDK
  call after a step's result) awaits that future, so what was acknowledged
  survives a power cut, not only a crash of the process; commits made
  while an fsync runs share the next one. WAL checkpoints run on a thread
  of their own too (``checkpoint.py``), not inside a commit.
  ``busy_timeout`` covers a short lock held by another process (a backup,
  the sqlite3 shell); a second engine on the same file is refused by an
  advisory lock.

Startup checks turn SQLite's terse failures into ``StoreError`` subclasses
that name the file and say what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from agentcmd.engine.store.checkpoint import Checkpointer, disable_auto_checkpoint
from agentcmd.engine.store.migrations import apply_migrations
from agentcmd.engine.store.retention import prepare_new_database
from agentcmd.engine.store.walsync import Parked, WalSync
from agentcmd.errors import DatabaseCorruptError, DatabaseLockedError, DatabaseUnwritableError, StoreError
from agentcmd.privatefs import FILE_MODE, ensure_private_dir, ensure_private_file, private_umask, tighten

T = TypeVar("T")
log = logging.getLogger("agentcmd.engine.store")

# How long to wait for a lock held by *another process* (a backup, the
# sqlite3 shell) before reporting "locked" with the file name. We never
# contend with ourselves: there is one connection.
BUSY_TIMEOUT_MS = 2000
# Commits do not fsync on the loop; ``WalSync`` fsyncs the WAL before results are delivered.
COMMIT_SYNCHRONOUS = "NORMAL"


class EngineConnection(sqlite3.Connection):
    """A connection that carries the engine's hook for which internal events need dispatching."""

    dispatch_filter: Callable[[str], bool] | None = None
    run_observer: Callable[[str, str, str, str | None], None] | None = None  # (started|finished, run, function, status)


class Database:
    """A SQLite database used from one event loop; see the module docstring."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.in_memory = path is None
        self._uri = (f"file:agentcmd-{uuid.uuid4().hex}?mode=memory&cache=shared" if path is None
                     else None)
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._relaxed: set[asyncio.Future[Any]] = set()     # write(durable=False): delivered at commit
        self._lock_fh: IO[str] | None = None
        self._closed = False
        self._checkpointer: Checkpointer | None = None
        self.wal_sync: WalSync | None = None
        """Files only: delivers committed results after an fsync of the WAL (``walsync.py``)."""
        self.write_error: DatabaseUnwritableError | DatabaseLockedError | None = None
        """Set while writes fail for a reason that passes (a full or read-only disk, I/O errors, a lock
        held by another process); cleared by the next commit that writes."""
        self.commits = 0
        self.writes = 0
        self.on_change: Callable[[], None] | None = None
        """Called on the loop after each commit that changed a row (the engine's ``Changes.bump``)."""

    # -- lifecycle -----------------------------------------------------------
    def describe(self) -> str:
        return "in memory" if self.path is None else str(self.path)

    def open(self) -> None:
        """Open, check and migrate the database.

        Raises ``DatabaseLockedError``, ``DatabaseCorruptError`` or
        ``DatabaseVersionError`` naming the file.
        """
        if self.path is not None:
            ensure_private_dir(self.path.parent)
            self._lock_file()
        try:
            with private_umask():     # SQLite's -wal and -shm files: 0600 like the database
                if self.path is not None:
                    self._private_files()
                self._conn = self._init()
        except BaseException:
            self._unlock()
            raise
        if self.path is not None:
            disable_auto_checkpoint(self._conn)
            self._checkpointer = Checkpointer(self.path)
            self._checkpointer.start()
            self.wal_sync = WalSync(self.path, self._fsync_failed)
            _fsync_dir(self.path.parent)     # the -wal file's directory entry (made at open) is on disk

    def _private_files(self) -> None:
        """The database holds every event and step output: 0600, and so are the WAL files
        SQLite creates next to it (it gives them the database's mode); older files are tightened."""
        assert self.path is not None
        with contextlib.suppress(OSError):   # an unreadable path is reported by _init, naming the file
            ensure_private_file(self.path)
        for suffix in ("-wal", "-shm"):
            tighten(self.path.with_name(self.path.name + suffix))

    def _lock_file(self) -> None:
        # SQLite only locks during a transaction, so two idle engines could
        # share one file and steal each other's queue. An advisory lock on a
        # sibling file makes the second one fail at once, naming the file.
        assert self.path is not None
        lock_path = self.path.with_name(self.path.name + ".lock")
        fh = os.fdopen(os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE), "a+")
        tighten(lock_path)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise DatabaseLockedError(
                f"the engine database {self.path} is in use by another engine process",
                "stop the other 'agentcmd engine start' using this --sqlite-dir, or choose another "
                "--sqlite-dir") from None
        self._lock_fh = fh

    def _unlock(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def close(self) -> None:
        """Flush queued writes, checkpoint the WAL and close the connection."""
        if self._closed:
            return
        if self._pending and self._conn is not None:
            self._flush()
        self._closed = True
        if self.wal_sync is not None:
            self.wal_sync.close()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                if not self.in_memory:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._conn.close()
            self._conn = None
        self._unlock()

    def _connect(self) -> sqlite3.Connection:
        if self._uri is not None:
            conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False, isolation_level=None,
                                   factory=EngineConnection)
        else:
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                   factory=EngineConnection)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _init(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
            prepare_new_database(conn)   # auto_vacuum=INCREMENTAL, before WAL writes the header (retention.py)
            if not self.in_memory:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"could not switch {self.path} to WAL mode (got {mode})",
                                     "put the database on a local disk that supports WAL")
                conn.execute(f"PRAGMA synchronous = {COMMIT_SYNCHRONOUS}")
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise DatabaseCorruptError(
                        f"the engine database {self.path} is corrupt ({check})",
                        f"move {self.path} aside (keep it for inspection) and start again with an "
                        "empty --sqlite-dir, or restore it from a backup")
            apply_migrations(conn, self.describe())
            return conn
        except sqlite3.DatabaseError as exc:
            raise translate_error(exc, self.describe()) from None

    def set_dispatch_filter(self, fn: Callable[[str], bool]) -> None:
        """Internal events (``inngest/...``) whose name ``fn`` rejects are stored but not dispatched."""
        conn = self.conn
        assert isinstance(conn, EngineConnection)
        conn.dispatch_filter = fn

    def set_run_observer(self, fn: Callable[[str, str, str, str | None], None]) -> None:
        """``fn("started", run_id, slug, None)`` per run created, ``fn("finished", run_id, slug, status)`` per run
        ended (metrics and traces)."""
        conn = self.conn
        assert isinstance(conn, EngineConnection)
        conn.run_observer = fn

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None or self._closed:
            raise StoreError("the engine database is closed", "restart the engine")
        return self._conn

    # -- grouped writes ------------------------------------------------------
    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        conn = self.conn
        results: list[tuple[Any, BaseException | None]] = []
        if len(batch) == 1:
            self._flush_one(conn, *batch[0])
            return
        before = conn.total_changes
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, _fut in batch:
                conn.execute("SAVEPOINT job")
                try:
                    results.append((fn(conn), None))
                    conn.execute("RELEASE job")
                except Exception as exc:
                    if _aborts_transaction(conn, exc):
                        raise       # the disk failed us (or SQLite rolled back): the whole batch fails
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((None, exc))
            self._commit(conn)
        except sqlite3.Error as exc:
            self._failed(conn, exc, [fut for _fn, fut in batch])
            return
        changed = conn.total_changes != before
        self._committed(len(batch), changed)
        self._deliver([(fut, value, error) for (_fn, fut), (value, error) in zip(batch, results, strict=True)],
                      changed)

    def _flush_one(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any],
                   fut: asyncio.Future[Any]) -> None:
        """A lone write needs no savepoint: its own transaction is the unit of undo."""
        before = conn.total_changes
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                value = fn(conn)
            except Exception as exc:
                if _aborts_transaction(conn, exc):
                    raise
                conn.execute("ROLLBACK")
                self._relaxed.discard(fut)
                if not fut.done():
                    fut.set_exception(exc)
                return
            self._commit(conn)
        except sqlite3.Error as exc:
            self._failed(conn, exc, [fut])
            return
        changed = conn.total_changes != before
        self._committed(1, changed)
        self._deliver([(fut, value, None)], changed)

    def _commit(self, conn: sqlite3.Connection) -> None:
        """The one place a grouped transaction ends (tests wrap it)."""
        conn.execute("COMMIT")

    def _deliver(self, results: list[Parked], changed: bool) -> None:
        """Resolve the callers' futures: for a file, once the WAL fsync covering this commit is done.

        A commit that wrote nothing needs no fsync, but it must not be seen
        before the earlier results still waiting for one (what it read may be
        theirs): it goes out with the last of them (``WalSync.after_read``).
        """
        if self._relaxed:       # write(durable=False): out at once, no fsync of their own
            now = [r for r in results if r[0] in self._relaxed]
            results = [r for r in results if r[0] not in self._relaxed]
            self._relaxed.difference_update(fut for fut, _value, _error in now)
            _resolve(now)
            if not results:
                return
        if self.wal_sync is not None and changed:
            self.wal_sync.after_commit(results)
            return
        if self.wal_sync is not None and self.wal_sync.busy:
            self.wal_sync.after_read(results)
            return
        _resolve(results)

    def _fsync_failed(self, exc: OSError) -> StoreError:
        """The committed data may not be on disk: its callers fail (they were told nothing), like a failed write."""
        err = DatabaseUnwritableError(
            f"the engine database {self.describe()} cannot be written: fsync of its WAL failed ({exc})",
            "check the disk holding it: free space, quotas, dmesg; the engine answers 503 meanwhile and "
            "resumes by itself once the disk works")
        if self.write_error is None:
            log.error("%s", err)
        self.write_error = err
        return err

    def _failed(self, conn: sqlite3.Connection, exc: sqlite3.Error, futures: list[asyncio.Future[Any]]) -> None:
        """Roll back and fail every caller with the translated error; remember a disk outage."""
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        err = translate_error(exc, self.describe())
        if isinstance(err, DatabaseUnwritableError | DatabaseLockedError):
            if self.write_error is None:
                log.error("%s", err)
            self.write_error = err
        for fut in futures:
            self._relaxed.discard(fut)
            if not fut.done():
                fut.set_exception(err)

    def _committed(self, writes: int, changed: bool) -> None:
        self.commits += 1
        self.writes += writes
        if changed and self._checkpointer is not None:
            self._checkpointer.nudge()
        if self.write_error is not None and changed:    # a commit that wrote nothing proves nothing
            log.warning("the engine database %s can be written again", self.describe())
            self.write_error = None
        if changed and self.on_change is not None:
            self.on_change()

    def write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> asyncio.Future[T]:
        """Run ``fn(conn)`` in a write transaction shared with this loop turn's other writes.

        ``fn`` must not commit; if it raises, only its own changes are undone.
        Await the result: it is durable when the await returns (committed and,
        for a file, the WAL fsynced: it survives a power cut).

        ``durable=False`` is for a write nothing depends on surviving a power
        cut (a run shown as Running from its first call, which the call's own
        outcome sets again): it resolves at its commit and starts no fsync; the
        next durable write's fsync covers it. An fsync of its own ran beside
        the run's first SDK call, and the call's result, committed while it
        ran, waited for it and then for its own (docs/engine.md, Performance).
        """
        if self._closed:
            raise StoreError("the engine database is closed", "restart the engine")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        if not durable:
            self._relaxed.add(fut)
        self._pending.append((fn, fut))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return fut

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` now on the connection (committed state only)."""
        try:
            return fn(self.conn)
        except sqlite3.DatabaseError as exc:
            raise translate_error(exc, self.describe()) from None

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Blocking ``write`` for startup code and tests; warns inside a running loop."""
        _warn_if_in_loop("write_sync")
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            value = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if self.wal_sync is not None:
            self.wal_sync.fsync()
        return value

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        _warn_if_in_loop("read_sync")
        return fn(self.conn)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _aborts_transaction(conn: sqlite3.Connection, exc: BaseException) -> bool:
    """A disk error, or an error after which SQLite already rolled the whole transaction back."""
    return isinstance(exc, sqlite3.Error) and (is_unwritable(exc) or not conn.in_transaction)


def _warn_if_in_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    warnings.warn(f"Database.{name}() blocks the event loop; use the async method", RuntimeWarning,
                  stacklevel=3)


# SQLite's primary result codes (``sqlite3.Error.sqlite_errorcode & 0xff``) that mean "cannot write now".
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_FULL = 13
_UNWRITABLE = {
    SQLITE_FULL: ("the disk is full", "free space on the disk that holds it"),
    SQLITE_READONLY: ("the file or its filesystem is read-only",
                      "make the file and its directory writable by this user (or remount the disk read-write)"),
    SQLITE_IOERR: ("writing to it failed with an I/O error (a full disk, a quota, a file size limit or a "
                   "failing disk)", "check the disk holding it: free space, quotas, 'ulimit -f', dmesg"),
}


def is_unwritable(exc: BaseException) -> bool:
    """True for a write that failed because of the disk, not because of the data."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in _UNWRITABLE


def _resolve(results: list[Parked]) -> None:
    for fut, value, error in results:
        if fut.done():
            continue
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)


def translate_error(exc: sqlite3.Error, where: str) -> StoreError:
    """Map a sqlite3 error to a StoreError that names the file and the fix."""
    if isinstance(exc, StoreError):
        return exc
    text = str(exc)
    low = text.lower()
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _UNWRITABLE:
        why, fix = _UNWRITABLE[code & 0xFF]
        return DatabaseUnwritableError(
            f"the engine database {where} cannot be written: {why} ({text})",
            f"{fix}; the engine keeps what it has, answers 503 to new events meanwhile, and resumes by itself "
            "once writes succeed")
    if "locked" in low or "busy" in low:
        return DatabaseLockedError(
            f"the engine database {where} is locked by another process ({text})",
            "something else holds its lock (a backup, the sqlite3 shell, a second engine on this "
            "--sqlite-dir): let it finish or stop it; a running engine answers 503 meanwhile and "
            "retries by itself")
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return DatabaseCorruptError(
            f"the engine database {where} is corrupt or not a SQLite file ({text})",
            f"move {where} aside (keep it for inspection) and start again with an empty "
            "--sqlite-dir, or restore it from a backup")
    return StoreError(f"engine database error in {where}: {text}",
                      "check the disk and file permissions of the --sqlite-dir")
