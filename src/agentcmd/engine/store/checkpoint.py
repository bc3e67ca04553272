"""WAL checkpoints off the event loop.

SQLite's default copies the WAL back into the database file inside whichever
commit pushes the WAL past 1,000 pages, and that commit runs on the engine's
event loop (``sqlite.py``): under a 10,000-run load that showed as stalls of
56-138 ms every few seconds, every wake-up due in them late together
(docs/benchmarks.md). So the engine's own connection turns automatic
checkpoints off, and this thread, with its own connection, runs a
``PASSIVE`` checkpoint at most every ``interval_s`` after a commit that
wrote something (``nudge()``; an idle engine does nothing): it copies what
no reader still needs and never waits for or blocks the writer. The sqlite3 module releases
the GIL while SQLite works, so the copying and its ``fsync`` overlap the
loop instead of pausing it. Durability is unchanged: a commit is durable
once it is in the WAL, checkpointed or not.

A ``PASSIVE`` checkpoint alone never lets a busy engine's WAL start over:
SQLite rewinds the WAL only at a write that finds every frame copied back,
and under steady load new frames always arrive while the copy runs. The WAL
then only grew (84 MB in a 30 s benchmark) and every commit's fsync extended
the file, which costs a filesystem journal commit for the new size: 0.22-0.27
ms per fdatasync here against 0.09 ms for rewriting blocks already there
(docs/engine.md, Performance). So once the WAL passes ``restart_pages``, a
``RESTART`` checkpoint follows the passive one: it copies the few frames
written meanwhile while holding the write lock (median 0.5 ms; a commit that
meets it waits that long) and lets the next commit rewind the WAL, whose
blocks are then rewritten in place. It never waits for the lock or for
readers (``busy_timeout`` 0): busy, it is tried again at the next interval.

If the thread cannot checkpoint (disk trouble), it logs once and keeps
trying; the WAL grows meanwhile and ``Database.close`` still truncates it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("agentcmd.engine.store")

DEFAULT_INTERVAL_S = 0.5
RESTART_PAGES = 1000
"""WAL size (pages, ~4 MB) past which a checkpoint also rewinds the WAL (see the module docstring)."""


class Checkpointer:
    """A daemon thread that checkpoints one WAL database every ``interval_s``."""

    def __init__(self, path: Path, interval_s: float | None = None, busy_timeout_ms: int = 100,
                 restart_pages: int | None = None) -> None:
        self.path = path
        self.interval_s = DEFAULT_INTERVAL_S if interval_s is None else interval_s
        self.busy_timeout_ms = busy_timeout_ms
        self.restart_pages = RESTART_PAGES if restart_pages is None else restart_pages
        self.checkpoints = 0
        self.restarts = 0
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="agentcmd-wal-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """A commit wrote to the WAL: checkpoint it within ``interval_s``."""
        self._dirty.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            while True:
                self._dirty.wait()
                if self._stop.wait(self.interval_s):     # let commits gather; stop() cuts the wait short
                    return
                self._dirty.clear()
                self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            busy, wal_pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy and wal_pages >= self.restart_pages and copied == wal_pages:
                self._restart(conn)
        except sqlite3.Error as exc:
            if not self._failing:
                log.warning("WAL checkpoint of %s failed (%s); the WAL file grows until it succeeds",
                            self.path, exc)
            self._failing = True
            self._dirty.set()       # try again in ``interval_s``
            return
        if self._failing:
            log.info("WAL checkpoints of %s work again", self.path)
        self._failing = False
        if not busy:
            self.checkpoints += 1

    def _restart(self, conn: sqlite3.Connection) -> None:
        """Copy what came in since the passive checkpoint and let the next commit rewind the WAL."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            busy, _wal_pages, _copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except sqlite3.OperationalError:     # the write lock was taken: try again next time
            busy = 1
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        if not busy:
            self.restarts += 1


def disable_auto_checkpoint(conn: sqlite3.Connection) -> None:
    """The engine's connection leaves checkpoints to ``Checkpointer``."""
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_autocheckpoint = 0")
