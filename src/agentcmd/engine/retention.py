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
import time
from dataclasses import dataclass, field
from typing import Any

from agentcmd.engine.clock import Clock
from agentcmd.engine.retentionage import DEFAULT_RETENTION_S, format_retention, parse_age, parse_retention
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
from agentcmd.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_RETENTION_S",
    "PruneInputError",
    "PruneReport",
    "Pruner",
    "format_retention",
    "human_size",
    "parse_age",
    "parse_retention",
    "prune_request",
    "storage_view",
]

log = logging.getLogger("agentcmd.engine.retention")


class PruneInputError(InputError):
    """A prune request the engine cannot act on (no age, a bad age, ``dry_run`` not a boolean)."""

    code = "invalid_prune"
    http_status = 400
    fix_hint = ('send {"older_than": "30d", "dry_run": false} (an age such as 30d, 12h or 90m; docs/engine.md, '
                '"Retention"), or run \'agentcmd engine prune --older-than 30d --dry-run\'')

DEFAULT_INTERVAL_S = 600.0      # a background pass every 10 minutes (the first one a minute after start)
FIRST_PASS_S = 60.0
TARGET_MS = 5.0                 # aim for this much SQL per batch
PAUSE_S = 0.02                  # yield at least this long between batches: the engine's own work goes first
DUTY = 3.0                      # ... and at least 3x what the last batch took, commit and fsync included
MIN_BATCH, START_BATCH, MAX_BATCH = 10, 50, 1000
VACUUM_PAGES = 256              # pages (1 MiB at 4 KiB) handed back per vacuum step


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
                 interval_s: float = DEFAULT_INTERVAL_S, pause_s: float = PAUSE_S, duty: float = DUTY) -> None:
        self.store = store
        self.clock = clock
        self.retention_s = retention_s
        self.interval_s = interval_s
        self.pause_s = pause_s
        self.duty = duty
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

    async def stats(self, count_runs: bool = True) -> StorageStats:
        return await self.store.read(lambda c: storage_stats(c, self.store.db.path, count_runs))

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
        before = await self.stats(count_runs=False)
        report.bytes_before = before.size_bytes
        cursor = Cursor()
        syncing: list[asyncio.Future[Any]] = []
        try:
            for step in (run_batch_txn, event_batch_txn):
                while True:
                    counts, looked, sql_ms = await self._batch_of(step, report, now, cursor, dry_run, syncing)
                    report.counts.add(counts)
                    if looked == 0:
                        break
                    await self._yield(sql_ms)
            if not dry_run:
                while True:
                    began = time.perf_counter()
                    freed = await self.store.write(lambda c: vacuum_step_txn(c, VACUUM_PAGES, TARGET_MS))
                    report.pages_freed += freed
                    if freed == 0:
                        break
                    await self._yield(min(TARGET_MS, (time.perf_counter() - began) * 1000))
        finally:
            await asyncio.gather(*syncing, return_exceptions=True)
        for fut in syncing:
            if fut.exception() is not None:      # a commit or its fsync failed: this pass did not complete
                raise fut.exception()  # type: ignore[misc]
        after = await self.stats(count_runs=False)
        report.bytes_after = after.size_bytes
        report.free_bytes_after = after.free_bytes
        report.auto_vacuum = after.auto_vacuum
        report.finished_at = self.clock()
        report.seconds = time.perf_counter() - started
        if not dry_run:
            self.last = report
        return report

    async def _yield(self, sql_ms: float) -> None:
        """Between batches: at least ``pause_s``, and ``duty`` times the batch's SQL (a busy machine makes
        batches slower, and the pruner backs off with them)."""
        await asyncio.sleep(max(self.pause_s, self.duty * sql_ms / 1000))

    async def _batch_of(self, step: Any, report: PruneReport, now: int, cursor: Cursor, dry_run: bool,
                        syncing: list[asyncio.Future[Any]]) -> tuple[PruneCounts, int, float]:
        """One batch, sized so its SQL takes about ``TARGET_MS``; -> (counts, rows looked at, its SQL in ms).

        The pruner goes on once the batch is committed, without waiting for the
        WAL fsync that makes it durable (nobody is told about a deletion, and
        the next pass redoes one that a crash lost): its future joins
        ``syncing``, awaited at the end of the pass. Otherwise, on a busy disk,
        every batch would cost an fsync's latency and a pass would crawl.
        """
        size = self._batch if step is run_batch_txn else self._batch * 5
        ran = asyncio.Event()
        out: list[tuple[PruneCounts, int, float]] = []

        def txn(conn: Any) -> tuple[PruneCounts, int]:
            t0 = time.perf_counter()
            try:
                counts, looked = step(conn, report.cutoff, now, size, cursor, dry_run)
                out.append((counts, looked, (time.perf_counter() - t0) * 1000))
                return counts, looked
            finally:
                ran.set()

        if dry_run:
            await self.store.read(txn)
        else:
            fut = asyncio.ensure_future(self.store.write(txn))
            syncing.append(fut)
            flushed = asyncio.ensure_future(ran.wait())
            await asyncio.wait([fut, flushed], return_when=asyncio.FIRST_COMPLETED)
            flushed.cancel()
            if not out:                      # the batch raised (its savepoint was rolled back): report it
                await fut
        counts, looked, ms = out[0]
        report.batches += 1
        report.longest_batch_ms = max(report.longest_batch_ms, ms)
        if ms > 0:     # aim for TARGET_MS next time: grow at most 2x, shrink in proportion
            self._batch = max(MIN_BATCH, min(MAX_BATCH, int(self._batch * min(2.0, TARGET_MS / ms))))
        return counts, looked, ms


def storage_view(stats: StorageStats, pruner: Pruner) -> dict[str, Any]:
    """``GET /v1/storage``'s ``data`` (and the dashboard's storage line): size, oldest kept run, policy."""
    from agentcmd.engine.protocol import iso_ms

    oldest = None if stats.oldest_run_id is None else {
        "run_id": stats.oldest_run_id, "created_at": iso_ms(stats.oldest_run_created_at),
        "status": stats.oldest_run_status}
    return {"path": stats.path, "in_memory": stats.path is None, "size_bytes": stats.size_bytes,
            "file_bytes": stats.file_bytes, "wal_bytes": stats.wal_bytes, "free_bytes": stats.free_bytes,
            "page_size": stats.page_size, "auto_vacuum": stats.auto_vacuum, "runs": stats.runs,
            "oldest_run": oldest, "retention": format_retention(pruner.retention_s),
            "retention_seconds": pruner.retention_s, "pruning": pruner.running,
            "last_prune": None if pruner.last is None else pruner.last.as_dict()}


def prune_request(body: Any, default_s: float | None) -> tuple[float, bool]:
    """``POST /v1/storage/prune``'s body -> (older than, in seconds; dry run), or ``PruneInputError``.

    ``older_than`` defaults to the engine's retention (when it is not ``forever``).
    """
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise PruneInputError("the prune request must be a JSON object")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise PruneInputError(f"dry_run must be true or false, got {dry_run!r}")
    raw = body.get("older_than")
    if raw is None:
        if default_s is None:
            raise PruneInputError("older_than is missing and this engine keeps runs forever (retention 0)")
        return default_s, dry_run
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise PruneInputError(f"older_than must be an age such as \"30d\", got {raw!r}")
    try:
        return parse_age(str(raw), "older_than"), dry_run
    except ConfigError as exc:
        raise PruneInputError(exc.what) from None


def human_size(n: int) -> str:
    """1536 -> ``1.5 KiB``: sizes as the CLI report and the dashboard print them."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
