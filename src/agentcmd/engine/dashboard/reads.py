"""The dashboard's reads: each one query of ``agentcmd.engine.store.queries`` on a read connection.

One read path (CONVENTIONS habit 15): the pages read through the same query
functions the REST API answers with, so a JSON twin and ``GET /v1/runs``
(or ``GET /v1/runs/{id}``) cannot disagree. ``DashboardReads`` only puts
each on the store's read connection (one hop per page part) and keeps the
status counts in a ``CountCache``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from agentcmd.engine.connect.view import WorkerView
from agentcmd.engine.flow.replay import ReplayRequest, count_to_replay_txn
from agentcmd.engine.store import queries
from agentcmd.engine.store.queries.models import (
    AppRow,
    EventRow,
    FunctionDetail,
    FunctionRow,
    HistoryRow,
    Page,
    RunDetail,
    RunFilter,
    RunSummary,
    SkipRow,
    StepRow,
    WaitRow,
)

T = TypeVar("T")


class ReadsSQLite(Protocol):
    """The read side of the engine's store (``HistoryReader``)."""

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...


class CountCache:
    """Runs-per-status counts, reused for a while in proportion to what they cost.

    Counting is the one query that grows with the table (a scan: ~5 ms at
    10,000 runs, ~100 ms at 100,000 on the 2-core machine), while the list
    itself is an index range (~0.2 ms at any size). A count that took ``t``
    is reused for ``COST_FACTOR * t`` (at most ``MAX_AGE_S``): free on a small
    database, and on a large one the chips may lag the list by a few seconds
    rather than every page paying the scan. The clock is injected for tests.
    """

    COST_FACTOR = 50
    MAX_AGE_S = 5.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[RunFilter, tuple[float, dict[str, int]]] = {}

    def get(self, filt: RunFilter) -> dict[str, int] | None:
        entry = self._entries.get(filt)
        if entry is None or self._clock() >= entry[0]:
            return None
        return entry[1]

    def put(self, filt: RunFilter, counts: dict[str, int], cost_s: float) -> None:
        age = min(self.MAX_AGE_S, self.COST_FACTOR * cost_s)
        if age > 0.05:
            if len(self._entries) > 256:
                self._entries.clear()
            self._entries[filt] = (self._clock() + age, counts)


class DashboardReads:
    """The dashboard's queries on the engine's store, each on a read connection."""

    def __init__(self, db: ReadsSQLite, counts: CountCache | None = None) -> None:
        self._db = db
        self._counts = counts or CountCache()

    async def list_runs(self, filt: RunFilter, before: str | None, limit: int) -> Page[RunSummary]:
        return await self._db.read(lambda c: queries.list_runs(c, filt, before, limit))

    async def count_runs(self, filt: RunFilter) -> dict[str, int]:
        """Runs per status under ``filt`` (ignoring its status): the filter chips' numbers."""
        key = RunFilter(None, filt.function, filt.since, filt.until)  # the status is ignored anyway
        cached = self._counts.get(key)
        if cached is not None:
            return cached
        started = time.perf_counter()
        counts = await self._db.read(lambda c: queries.count_runs(c, key))
        self._counts.put(key, counts, time.perf_counter() - started)
        return counts

    async def get_run(self, run_id: str) -> RunDetail | None:
        return await self._db.read(lambda c: queries.run_detail(c, run_id))

    async def run_steps(self, run_id: str) -> list[StepRow]:
        return await self._db.read(lambda c: queries.step_rows(c, run_id))

    async def run_history(self, run_id: str) -> list[HistoryRow]:
        return await self._db.read(lambda c: queries.history_rows(c, run_id))

    async def run_waits(self, run_id: str) -> list[WaitRow]:
        return await self._db.read(lambda c: queries.run_waits(c, run_id))

    async def list_events(self, name: str | None, before: str | None, limit: int) -> Page[EventRow]:
        return await self._db.read(lambda c: queries.list_events(c, name, before, limit))

    async def get_event(self, event_id: str) -> EventRow | None:
        return await self._db.read(lambda c: queries.event_row(c, event_id))

    async def event_runs(self, event_id: str) -> list[RunSummary]:
        return await self._db.read(lambda c: queries.event_run_summaries(c, event_id))

    async def list_functions(self) -> list[FunctionRow]:
        return await self._db.read(queries.function_rows)

    async def get_function(self, slug: str) -> FunctionDetail | None:
        return await self._db.read(lambda c: queries.function_detail(c, slug))

    async def event_skips(self, event_id: str) -> list[SkipRow]:
        return await self._db.read(lambda c: queries.event_skip_rows(c, event_id))

    async def replay_matches(self, slug: str, request: ReplayRequest) -> int:
        """How many runs a replay would start now; raises ``ReplayInputError`` over the cap."""
        return await self._db.read(lambda c: count_to_replay_txn(c, slug, request))

    async def storage(self) -> dict[str, Any] | None:
        """The database's size and oldest kept run (``Commands.storage``); None when the reader has none."""
        storage = getattr(self._db, "storage", None)
        if storage is None:
            return None
        from agentcmd.engine.retention import human_size

        view: dict[str, Any] = await storage()
        return {**view, "size_text": human_size(view["size_bytes"]), "free_text": human_size(view["free_bytes"])}

    async def list_apps(self) -> list[AppRow]:
        return await self._db.read(queries.app_rows)

    def connect_workers(self) -> list[WorkerView]:
        """The workers connected over the connect gateway (``Commands.connect_workers``); none without one."""
        workers = getattr(self._db, "connect_workers", None)
        return list(workers()) if workers is not None else []

    async def app_url(self, app_id: str) -> str | None:
        """The URL the app registered (its SDK endpoint), or None for an unknown app."""
        apps = await self._db.read(queries.list_apps)
        return next((str(a["url"]) for a in apps if a["id"] == app_id and a["url"]), None)
