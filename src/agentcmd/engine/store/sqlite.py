"""SQLite access: one writer thread that groups commits, plus readers.

Why a writer thread: SQLite allows one writer at a time, and a commit
awaited through a generic thread pool costs ~2 ms of hand-offs. Here every
``write(fn)`` call is queued to one dedicated thread, which takes *all*
queued calls at once and runs them in one ``BEGIN IMMEDIATE`` transaction
(each under its own SAVEPOINT, so one failing call does not undo the
others), commits once, and answers each caller with
``loop.call_soon_threadsafe``. Under load, 32 runs moving at once share a
commit (see CONVENTIONS "measured facts").

Two modes, one code path:

* ``memory``: ``file:agentcmd-<uuid>?mode=memory&cache=shared``. The
  writer's connection is kept open for the life of the database (closing
  the last connection deletes an in-memory database). Shared cache locks
  whole tables, so readers would get "database table is locked" while a
  write is in flight and ``busy_timeout`` does not help there: in memory
  mode reads run on the writer thread too.
* ``file``: WAL journal, ``synchronous=NORMAL`` (a commit survives a crash
  of the process, which is what ``kill -9`` tests; a power cut may lose the
  last few commits but never corrupts the file), and reads on a small pool
  of thread-local read connections that never block the writer.

Startup checks turn SQLite's terse failures into ``StoreError`` subclasses
that name the file and say what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import queue
import sqlite3
import threading
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar

from agentcmd.engine.store.migrations import apply_migrations
from agentcmd.errors import DatabaseCorruptError, DatabaseLockedError, StoreError

T = TypeVar("T")
log = logging.getLogger("agentcmd.engine.store")

# How long a connection waits for another process's lock before failing.
# Only another process can hold one (we have a single writer thread), so a
# short wait is enough; past it we report "locked" with the file name.
BUSY_TIMEOUT_MS = 2000
_STOP = object()


class Database:
    """A SQLite database with one writer thread; see the module docstring."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.in_memory = path is None
        self._uri = (f"file:agentcmd-{uuid.uuid4().hex}?mode=memory&cache=shared" if path is None
                     else None)
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer_conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._read_pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._lock_fh: IO[str] | None = None
        self.commits = 0
        self.writes = 0

    # -- lifecycle -----------------------------------------------------------
    def describe(self) -> str:
        return "in memory" if self.path is None else str(self.path)

    def open(self) -> None:
        """Open, check and migrate the database; start the writer thread.

        Raises ``DatabaseLockedError``, ``DatabaseCorruptError`` or
        ``DatabaseVersionError`` naming the file.
        """
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file()
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._writer_main, args=(ready,), name="agentcmd-db-writer",
                                        daemon=True)
        self._thread.start()
        ready.result()
        if not self.in_memory:
            self._read_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="agentcmd-db-read")

    def _lock_file(self) -> None:
        # SQLite only locks during a transaction, so two idle engines could
        # share one file and steal each other's queue. An advisory lock on a
        # sibling file makes the second one fail at once, naming the file.
        assert self.path is not None
        lock_path = self.path.with_name(self.path.name + ".lock")
        fh = open(lock_path, "a+")  # noqa: SIM115 - held open until close()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise DatabaseLockedError(
                f"the engine database {self.path} is in use by another engine process",
                "stop the other 'agentcmd engine start' using this --sqlite-dir, or choose another "
                "--sqlite-dir") from None
        self._lock_fh = fh

    def close(self) -> None:
        """Finish queued writes, checkpoint the WAL and close every connection."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join(timeout=10)
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=True)
        for conn in self._read_conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def _connect(self) -> sqlite3.Connection:
        if self._uri is not None:
            conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _init_writer(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
            if not self.in_memory:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"could not switch {self.path} to WAL mode (got {mode})",
                                     "put the database on a local disk that supports WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
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

    # -- the writer thread ----------------------------------------------------
    def _writer_main(self, ready: Future[None]) -> None:
        try:
            self._writer_conn = self._init_writer()
        except BaseException as exc:
            if self._lock_fh is not None:
                self._lock_fh.close()
                self._lock_fh = None
            ready.set_exception(exc)
            return
        ready.set_result(None)
        conn = self._writer_conn
        stop = False
        while not stop:
            batch = [self._jobs.get()]
            while True:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            jobs = []
            for job in batch:
                if job is _STOP:
                    stop = True
                else:
                    jobs.append(job)
            reads = [j for j in jobs if j[0] == "r"]
            writes = [j for j in jobs if j[0] == "w"]
            for _, fn, done in reads:
                try:
                    done(fn(conn), None)
                except BaseException as exc:
                    done(None, exc)
            if writes:
                self._run_writes(conn, writes)
        with contextlib.suppress(sqlite3.Error):
            if not self.in_memory:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()

    def _run_writes(self, conn: sqlite3.Connection, writes: list[Any]) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for _, fn, _done in writes:
                conn.execute("SAVEPOINT job")
                try:
                    results.append((fn(conn), None))
                    conn.execute("RELEASE job")
                except BaseException as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((None, exc))
            conn.execute("COMMIT")
            self.commits += 1
            self.writes += len(writes)
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            err = translate_error(exc, self.describe())
            for _, _fn, done in writes:
                done(None, err)
            return
        for (_, _fn, done), (value, error) in zip(writes, results, strict=True):
            done(value, error)

    def _submit(self, kind: str, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if self._closed:
            raise StoreError("the engine database is closed", "restart the engine")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()

        def _set(value: Any, error: BaseException | None) -> None:
            if not fut.done():
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(value)

        def done(value: Any, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_set, value, error)

        self._jobs.put((kind, fn, done))
        return fut

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in a write transaction, possibly shared with other calls.

        ``fn`` must not commit; if it raises, only its own changes are undone.
        The result is durable (committed) when this returns.
        """
        return await self._submit("w", fn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on a read connection (the writer's in memory mode)."""
        if self.in_memory or self._read_pool is None:
            return await self._submit("r", fn)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._read_job, fn)

    def _read_job(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            self._read_conns.append(conn)
        try:
            return fn(conn)
        except sqlite3.DatabaseError as exc:
            raise translate_error(exc, self.describe()) from None

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Blocking ``write`` for startup code and tests; warns inside a running loop."""
        _warn_if_in_loop("write_sync")
        fut: Future[T] = Future()

        def done(value: Any, error: BaseException | None) -> None:
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)

        self._jobs.put(("w", fn, done))
        return fut.result()

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        _warn_if_in_loop("read_sync")
        fut: Future[T] = Future()

        def done(value: Any, error: BaseException | None) -> None:
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)

        self._jobs.put(("r", fn, done))
        return fut.result()


def _warn_if_in_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    warnings.warn(f"Database.{name}() blocks the event loop; use the async method", RuntimeWarning,
                  stacklevel=3)


def translate_error(exc: sqlite3.Error, where: str) -> StoreError:
    """Map a sqlite3 error to a StoreError that names the file and the fix."""
    if isinstance(exc, StoreError):
        return exc
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return DatabaseLockedError(
            f"the engine database {where} is locked by another process ({text})",
            "stop the other 'agentcmd engine start' using this --sqlite-dir, or choose another "
            "--sqlite-dir")
    if "malformed" in low or "not a database" in low or "corrupt" in low or "disk i/o" in low:
        return DatabaseCorruptError(
            f"the engine database {where} is corrupt or not a SQLite file ({text})",
            f"move {where} aside (keep it for inspection) and start again with an empty "
            "--sqlite-dir, or restore it from a backup")
    return StoreError(f"engine database error in {where}: {text}",
                      "check the disk and file permissions of the --sqlite-dir")
