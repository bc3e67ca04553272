"""Retention: finished runs older than the setting leave the database, a small transaction at a time.

``engine.db`` would otherwise only grow: every run keeps its steps, history
and events forever. The engine prunes in the background (``Pruner.run``,
every ``interval_s``) and on demand (``agentcmd engine prune``, ``POST
/v1/storage/prune``). What may go and what is always kept is
``store/retention.py``'s docstring; this module is the policy:

* **Small transactions.** A batch deletes a few runs with their rows inside
  the engine's ordinary grouped write (``Database.write``), so it shares the
  event loop with everything else. Its size adapts so one batch stays near
  ``TARGET_MS`` (5 ms) of SQL; between batches the pruner sleeps
  ``PAUSE_S``, so due sleeps, SDK calls and new events go first. The write
  lock is never held longer than one batch.
* **Space back.** A database created by this version has
  ``auto_vacuum=INCREMENTAL`` (set before its first table; it cannot be
  switched on later without a full ``VACUUM`` rewriting the file under an
  exclusive lock, which would stall a running engine for as long as the copy
  takes), and after pruning the pruner hands free pages back
  ``VACUUM_PAGES`` at a time. An older database keeps ``auto_vacuum=none``:
  freed pages are reused by new rows (the file stops growing) and
  ``agentcmd engine prune --vacuum``, with the engine stopped, converts it.
* **Default 30 days.** Long enough to look back over a month of runs (the
  dashboard, ``agentcmd runs``, replays of last week's failures), short
  enough that a busy engine's file stays bounded. ``0``/``forever`` keeps
  everything, as before.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from agentcmd.engine.clock import Clock
from agentcmd.engine.store import Store
from agentcmd.engine.store.retention import (
    Cursor,
    PruneCounts,
    StorageStats,
    event_batch_txn,
    run_batch_txn,
    storage_stats,
    vacuum_step_txn,
)
from agentcmd.errors import ConfigError

log = logging.getLogger("agentcmd.engine.retention")

DEFAULT_RETENTION_S = 30 * 86400.0
DEFAULT_INTERVAL_S = 600.0      # a background pass every 10 minutes (the first one a minute after start)
FIRST_PASS_S = 60.0
TARGET_MS = 5.0                 # aim for this much SQL per batch
PAUSE_S = 0.02                  # yield between batches: the engine's own work goes first
MIN_BATCH, START_BATCH, MAX_BATCH = 5, 50, 1000
VACUUM_PAGES = 256              # pages (1 MiB at 4 KiB) handed back per vacuum step
SOURCES = "--retention, AGENTCMD_ENGINE_RETENTION or engine_retention in config.json"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_FOREVER = {"0", "forever", "never", "none", "off", "keep"}


def parse_retention(value: Any, source: str = SOURCES) -> float | None:
    """``30d``, ``12h``, ``90m``, ``3600`` (seconds), ``2w`` -> seconds; ``0``/``forever`` -> None (keep all).

    Anything else is a ``ConfigError`` naming ``source`` and the forms to use.
    """
    if value is None:
        return DEFAULT_RETENTION_S
    if isinstance(value, bool):
        raise _bad(value, source)
    if isinstance(value, int | float):
        if value == 0:
            return None
        if not math.isfinite(value) or value < 0:
            raise _bad(value, source)
        return float(value)
    text = str(value).strip().lower()
    if text in _FOREVER:
        return None
    m = _DURATION.match(text)
    if m is None:
        raise _bad(value, source)
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    return None if seconds == 0 else seconds


def parse_age(value: str, source: str) -> float:
    """``--older-than``: a duration like ``30d`` (above 0; ``forever`` makes no sense here)."""
    seconds = parse_retention(value, source)
    if seconds is None:
        raise ConfigError(f"{source} must be an age above 0 such as 30d, 12h or 90m, got {value!r}",
                          "e.g. --older-than 30d removes finished runs that ended more than 30 days ago")
    return seconds


def _bad(value: Any, source: str) -> ConfigError:
    return ConfigError(f"the run retention ({source}) must be a duration such as 30d, 12h, 90m or 3600 "
                       f"(seconds), or 0/forever to keep every run, got {value!r}",
                       "e.g. AGENTCMD_ENGINE_RETENTION=30d (the default), or forever to never prune")


def format_retention(seconds: float | None) -> str:
    """The setting as people write it: ``30d``, ``12h``, ``forever``."""
    if seconds is None:
        return "forever"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass
class PruneReport:
    """One pass: what went (or would go), how long it took, and what it did to the file."""

    older_than_s: float
    cutoff: int
    dry_run: bool
    counts: PruneCounts = field(default_factory=PruneCounts)
    batches: int = 0
    longest_batch_ms: float = 0.0
    pages_freed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    free_bytes_after: int = 0
    auto_vacuum: str = "none"
    started_at: int = 0
    finished_at: int = 0
    seconds: float = 0.0

    @property
    def bytes_freed(self) -> int:
        """Bytes the database gave back to the file system (pages x page size; the file shrinks by as much
        once the WAL checkpoint, which runs within a second, has copied the change)."""
        return max(0, self.bytes_before - self.bytes_after)

    def as_dict(self) -> dict[str, Any]:
        from agentcmd.engine.protocol import iso_ms

        return {"older_than": format_retention(self.older_than_s), "cutoff": iso_ms(self.cutoff),
                "dry_run": self.dry_run, "removed": self.counts.as_dict(), "rows": self.counts.rows,
                "batches": self.batches, "longest_batch_ms": round(self.longest_batch_ms, 2),
                "pages_freed": self.pages_freed, "bytes_before": self.bytes_before, "bytes_after": self.bytes_after,
                "bytes_freed": self.bytes_freed, "free_bytes_after": self.free_bytes_after,
                "auto_vacuum": self.auto_vacuum, "started_at": iso_ms(self.started_at),
                "finished_at": iso_ms(self.finished_at), "seconds": round(self.seconds, 3)}


class Pruner:
    """Prunes one store: in the background every ``interval_s`` and on demand, one pass at a time."""

    def __init__(self, store: Store, clock: Clock, retention_s: float | None,
                 interval_s: float = DEFAULT_INTERVAL_S, pause_s: float = PAUSE_S) -> None:
        self.store = store
        self.clock = clock
        self.retention_s = retention_s
        self.interval_s = interval_s
        self.pause_s = pause_s
        self.last: PruneReport | None = None
        self.running = False
        self._lock = asyncio.Lock()
        self._batch = START_BATCH

    async def run(self, stop: asyncio.Event, first_s: float = FIRST_PASS_S) -> None:
        """The background loop (a task of the engine); nothing to do with a retention of ``forever``."""
        if self.retention_s is None:
            return
        delay = first_s
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
                return
            except TimeoutError:
                pass
            delay = self.interval_s
            try:
                report = await self.prune(self.retention_s)
            except Exception as exc:     # a failed pass (disk full, locked) is tried again next time
                log.warning("pruning the engine database failed (%s); trying again in %.0f s", exc, delay)
                continue
            if report.counts.rows:
                log.info("pruned %d finished runs and %d events older than %s (%d rows, %.1f s, %d bytes given "
                         "back)", report.counts.runs, report.counts.events, format_retention(report.older_than_s),
                         report.counts.rows, report.seconds, report.bytes_freed)

    async def stats(self) -> StorageStats:
        return await self.store.read(lambda c: storage_stats(c, self.store.db.path))

    async def prune(self, older_than_s: float, dry_run: bool = False) -> PruneReport:
        """One pass: finished runs that ended more than ``older_than_s`` ago, then events, then free pages."""
        async with self._lock:
            self.running = True
            try:
                return await self._pass(older_than_s, dry_run)
            finally:
                self.running = False

    async def _pass(self, older_than_s: float, dry_run: bool) -> PruneReport:
        now = self.clock()
        started = time.perf_counter()
        report = PruneReport(older_than_s, now - int(older_than_s * 1000), dry_run, started_at=now)
        before = await self.stats()
        report.bytes_before = before.size_bytes
        cursor = Cursor()
        for step in (run_batch_txn, event_batch_txn):
            while True:
                counts, looked = await self._batch_of(step, report, now, cursor, dry_run)
                report.counts.add(counts)
                if looked == 0:
                    break
                await asyncio.sleep(self.pause_s)
        if not dry_run:
            while True:
                freed = await self.store.write(lambda c: vacuum_step_txn(c, VACUUM_PAGES))
                report.pages_freed += freed
                if freed < VACUUM_PAGES:
                    break
                await asyncio.sleep(self.pause_s)
        after = await self.stats()
        report.bytes_after = after.size_bytes
        report.free_bytes_after = after.free_bytes
        report.auto_vacuum = after.auto_vacuum
        report.finished_at = self.clock()
        report.seconds = time.perf_counter() - started
        if not dry_run:
            self.last = report
        return report

    async def _batch_of(self, step: Any, report: PruneReport, now: int, cursor: Cursor,
                        dry_run: bool) -> tuple[PruneCounts, int]:
        """One batch, sized so its SQL takes about ``TARGET_MS`` (halved when slower, grown when faster)."""
        size = self._batch if step is run_batch_txn else self._batch * 5
        timing: list[float] = []

        def txn(conn: Any) -> tuple[PruneCounts, int]:
            t0 = time.perf_counter()
            try:
                result: tuple[PruneCounts, int] = step(conn, report.cutoff, now, size, cursor, dry_run)
                return result
            finally:
                timing.append((time.perf_counter() - t0) * 1000)

        result = await (self.store.read(txn) if dry_run else self.store.write(txn))
        ms = timing[0] if timing else 0.0
        report.batches += 1
        report.longest_batch_ms = max(report.longest_batch_ms, ms)
        if ms > TARGET_MS and self._batch > MIN_BATCH:
            self._batch = max(MIN_BATCH, self._batch // 2)
        elif ms < TARGET_MS / 2 and result[1] >= size and self._batch < MAX_BATCH:
            self._batch = min(MAX_BATCH, self._batch * 2)
        return result
