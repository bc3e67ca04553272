"""Group fsync of the WAL on a thread of its own: acknowledged means on disk, even after a power cut.

``synchronous=NORMAL`` commits only ``write()`` the WAL: they survive a crash
of the process but a power cut can drop the last ones. ``synchronous=FULL``
fsyncs inside every ``COMMIT``, on the event loop's thread, which stalls
every run, HTTP answer and timer for the length of an fsync (measured 0.2 ms
on an idle disk and 5-10 ms on a busy one: docs/engine.md). So the engine
commits with ``NORMAL`` and then fsyncs the WAL here, off the loop, before
anyone is told the write happened:

* ``after_commit(results)`` parks the callers' results; if no fsync is
  running, one starts on this thread;
* when it ends, every result parked before it started is delivered (the
  ``await`` of ``Database.write`` returns): the 200 of ``POST /e``, the next
  SDK call after a step's result, a lease;
* commits made while an fsync runs wait for the next one, which covers them
  all: under load one fsync serves every commit of its time window (group
  commit), and the loop never waits for the disk.

An fsync of the ``-wal`` file makes every frame written to it before the call
durable (the header of a restarted WAL is synced by SQLite itself), which
is what ``FULL`` guarantees for each commit. A failed fsync (EIO, a full
disk) fails the parked callers with the store's "cannot be written" error:
they were never told the write happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Parked = tuple["asyncio.Future[Any]", Any, BaseException | None]


class WalSync:
    """Delivers committed results only after an fsync of the WAL that started after their commit."""

    def __init__(self, db_path: Path, on_error: Callable[[OSError], BaseException]) -> None:
        self.wal_path = db_path.with_name(db_path.name + "-wal")
        self.db_path = db_path
        self._on_error = on_error
        # One thread of our own, answering with call_soon_threadsafe: ~15 us less CPU per fsync than
        # run_in_executor's futures (docs/engine.md, Performance). It is woken by a bare lock used as a
        # bell (held: nothing asked), one futex wake per fsync, where a Condition took its own lock too.
        self._bell = threading.Lock()
        self._bell.acquire()
        self._requested = False                 # set before the bell rings, read after it was heard
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[Parked] = []        # committed, no fsync started since
        self._syncing: list[Parked] = []        # covered by the fsync running now
        self._running = False
        self._closed = False
        self._fd: int | None = None             # the WAL, open on the sync thread (``fsync``)
        self.syncs = 0

    @property
    def busy(self) -> bool:
        """An fsync is running or results wait for one (a later read-only result must not overtake them)."""
        return self._running or bool(self._waiting)

    def fsync(self) -> None:
        """Flush the WAL to disk (runs on the sync thread; tests wrap it): ``fdatasync``, see ``sync_data``.

        The sync thread keeps the WAL open between flushes (an open and a
        close less on every step's path); a WAL deleted meanwhile (no links
        left) is opened again, so a flush never goes to a file SQLite no longer
        writes. Flushes from elsewhere (``close``) open the file themselves.
        """
        if threading.current_thread() is not self._thread:
            self._sync_by_path()
            return
        fd = self._fd
        if fd is not None and os.fstat(fd).st_nlink == 0:
            self._fd = None
            os.close(fd)
            fd = None
        if fd is None:
            try:
                fd = self._fd = os.open(self.wal_path, os.O_RDONLY)
            except FileNotFoundError:
                self._sync_by_path()
                return
        sync_data(fd)

    def _sync_by_path(self) -> None:
        try:
            fd = os.open(self.wal_path, os.O_RDONLY)
        except FileNotFoundError:   # no WAL (checkpointed and truncated): the data is in the database file
            fd = os.open(self.db_path, os.O_RDONLY)
        try:
            sync_data(fd)
        finally:
            os.close(fd)

    def after_commit(self, results: list[Parked]) -> None:
        self._waiting.extend(results)
        if self._running:
            return
        if self._closed:            # nothing may be left parked once closed
            self._sync_here()
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:        # a flush at shutdown, after the loop ended: sync right here
            self._sync_here()
            return
        self._start()

    def after_read(self, results: list[Parked]) -> None:
        """Results of a commit that wrote nothing: delivered with the last results parked before them.

        They need no fsync of their own, only not to overtake what they may
        have read: with the results waiting for the next fsync if there are
        any, else with those of the fsync running now. Starting another fsync
        for them (as for a write) measured as one more disk flush per run at
        c=1 (the worker's lease query right after ``POST /e``), and the run's
        dispatch then waited for two flushes instead of one.
        """
        if self._waiting:
            self.after_commit(results)          # out after the next fsync, with the writes before them
        elif self._running:
            self._syncing.extend(results)       # out when the running fsync ends
        else:
            _deliver(results, None)

    def _sync_here(self) -> None:
        parked, self._waiting = self._waiting, []
        error: BaseException | None = None
        try:
            self.fsync()
        except OSError as exc:
            error = self._on_error(exc)
        with contextlib.suppress(RuntimeError):     # the futures' loop may be closed
            _deliver(parked, error)

    def _start(self) -> None:
        self._syncing, self._waiting = self._waiting, []
        self._running = True
        self._loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="agentcmd-wal-fsync", daemon=True)
            self._thread.start()
        self._requested = True
        self._bell.release()        # held here: the thread took it for the last fsync, which has ended

    def _serve(self) -> None:
        """The sync thread: one fsync per request, its outcome handed back to the loop."""
        while True:
            self._bell.acquire()
            if self._requested:
                self._requested = False
                loop = self._loop
                error: BaseException | None = None
                try:
                    self.fsync()
                except BaseException as exc:     # handed to the loop, which fails the parked writers
                    error = exc
                if loop is not None:
                    with contextlib.suppress(RuntimeError):     # the loop closed meanwhile: close() delivers
                        loop.call_soon_threadsafe(self._synced, error)
            if self._stopping:
                return

    def _synced(self, exc: BaseException | None) -> None:
        if self._closed:            # close() synced again and delivered everything itself
            return
        self._running = False
        error: BaseException | None = None
        if exc is not None:
            error = self._on_error(exc) if isinstance(exc, OSError) else exc
        else:
            self.syncs += 1
        batch, self._syncing = self._syncing, []
        _deliver(batch, error)
        if self._waiting and not self._closed:
            self._start()

    def close(self) -> None:
        """Sync once more on this thread and deliver everything still parked (shutdown)."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        if self._bell.locked():     # the thread waits for it or holds it for an fsync: it then sees _stopping
            self._bell.release()
        if self._thread is not None:
            self._thread.join()     # the running fsync ends; a pending request is served first
            self._thread = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._running = False       # its results are delivered here, not by the loop's callback
        self._waiting, self._syncing = self._syncing + self._waiting, []
        if self._waiting:
            self._sync_here()


def sync_data(fd: int) -> None:
    """``fdatasync`` where there is one (Linux), else ``fsync``.

    ``fdatasync`` makes the file's data durable and the metadata needed to read
    it back (its size, when the WAL grew); it skips only the modification time,
    which nothing reads. SQLite syncs its own WAL the same way. On ext4 it
    measured 0.08 ms against fsync's 0.76 ms (median; p90 0.24 ms against 4 ms)
    on the benchmark machine, because a plain fsync of a file whose mtime
    changed commits the filesystem journal, and that wait is on the path of
    every run's next step (docs/engine.md, Performance).
    """
    getattr(os, "fdatasync", os.fsync)(fd)


def _deliver(batch: list[Parked], error: BaseException | None) -> None:
    for fut, value, own_error in batch:
        if fut.done():
            continue
        if error is not None:
            fut.set_exception(error)
        elif own_error is not None:
            fut.set_exception(own_error)
        else:
            fut.set_result(value)
