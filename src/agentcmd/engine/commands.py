"""``Commands``: what the outside world may ask of a running engine, and nothing more.

The HTTP layers (``engine/api/*``, the dashboard) talk to this facade, not to
the ``Engine`` object: they accept events, cancel runs, pause, replay, sync
and register apps through it, check a caller's bearer with it, and read the
database through its ``read(fn)`` (the store's read path, the same query
functions everywhere). What it hides (the worker's free slots, the
executor's leases and concurrency gate, the dispatcher, the syncer) can then
change without touching a route.

It sees the engine through ``EngineParts``, a protocol ``Engine`` fulfils:
this module never imports ``engine/app.py``, so the core and the HTTP layers
do not import each other in a circle; ``app.py`` builds both, top-down.
The parts are looked up at call time, since the engine opens its store after
the routes may have been built.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

from agentcmd.engine.store import now_ms
from agentcmd.signing import BearerCheck

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from agentcmd.engine.appsync import Syncer
    from agentcmd.engine.changes import Changes
    from agentcmd.engine.clock import Clock
    from agentcmd.engine.config import EngineConfig
    from agentcmd.engine.connect.gateway import Gateway
    from agentcmd.engine.connect.view import ConnectView, WorkerView
    from agentcmd.engine.executor import Executor
    from agentcmd.engine.flow.bulkcancel import CancelRequest
    from agentcmd.engine.flow.replay import ReplayRequest
    from agentcmd.engine.flow.resume import Resumed
    from agentcmd.engine.functions import Function
    from agentcmd.engine.ingest import Dispatcher
    from agentcmd.engine.metrics import EngineMetrics
    from agentcmd.engine.registry import RegisterResult, Registry
    from agentcmd.engine.retention import Pruner, PruneReport
    from agentcmd.engine.store import Store
    from agentcmd.engine.store.models import NewEvent
    from agentcmd.engine.worker import Worker

T = TypeVar("T")


class EngineParts(Protocol):
    """The parts of ``engine.app.Engine`` the commands drive (store and co. exist once it is opened)."""

    config: EngineConfig
    changes: Changes
    closing: bool
    clock: Clock
    server_kind: str
    ready: bool
    store: Store
    registry: Registry
    worker: Worker
    executor: Executor
    dispatcher: Dispatcher
    metrics: EngineMetrics
    syncer: Syncer | None
    pruner: Pruner
    connect: ConnectView | None       # the connect gateway (engine/connect), None when off


class Reads(Protocol):
    """Read access alone: what a route that only answers questions gets (``Commands.read``)."""

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...


class PauseChange(NamedTuple):
    """What a pause or unpause did: the function's slug, whether its state changed, calls resumed."""

    slug: str
    changed: bool
    resumed: int


class Commands:
    """The engine's command facade for its HTTP routes and its dashboard."""

    def __init__(self, engine: EngineParts) -> None:
        self._engine = engine
        config = engine.config
        self._bearer = BearerCheck(config.signing_key) if config.production and config.signing_key else None

    # -- what the routes need to know ---------------------------------------------------------------

    @property
    def config(self) -> EngineConfig:
        return self._engine.config

    @property
    def mode(self) -> str:
        """``dev`` or ``production``."""
        return self._engine.config.mode

    @property
    def production(self) -> bool:
        return self._engine.config.production

    @property
    def server_kind(self) -> str:
        """``cloud`` in production, ``dev`` otherwise (the SDK checks it when it registers)."""
        return self._engine.server_kind

    @property
    def ready(self) -> bool:
        """Started and (with ``-u`` apps) synced or done waiting: ``/health`` answers 200."""
        return self._engine.ready

    def authorized(self, request: HTTPConnection) -> bool:
        """Production: a bearer with the signing key (raw or hashed). Dev: always."""
        if self._bearer is None:
            return True
        return self._bearer.ok(request.headers.get("authorization"))

    async def metrics_text(self) -> bytes:
        """``GET /metrics``: the counters, with the gauges read from the store now (one cheap query)."""
        from agentcmd.engine.store.queries.gauges import read_gauges

        gauges = await self._engine.store.read(lambda c: read_gauges(c, now_ms()))
        self._engine.metrics.set_gauges(gauges, self._engine.worker.in_flight)
        return self._engine.metrics.render()

    def connect_workers(self) -> list[WorkerView]:
        """The workers connected over the connect gateway (none when connect is off)."""
        gateway = self._engine.connect
        return gateway.workers() if gateway is not None else []

    def connect_gateway(self) -> Gateway | None:
        """The connect gateway itself, for its routes (engine/api/connect.py); None when connect is off."""
        from agentcmd.engine.connect.gateway import Gateway

        gateway = self._engine.connect
        return gateway if isinstance(gateway, Gateway) else None

    def database_problem(self) -> str | None:
        """Why the database cannot be written right now (disk full, read-only, locked), or None."""
        store = self._engine.store
        err = store.db.write_error if store is not None else None
        return f"{err.what} ({err.fix})" if err is not None else None

    @property
    def changes(self) -> Changes:
        """Bumped after every commit that changed a row: live pages wait on it instead of polling."""
        return self._engine.changes

    def closing(self) -> bool:
        """The engine is shutting down: live streams end."""
        return self._engine.closing

    def store_description(self) -> str:
        return "in memory" if self._engine.config.db_path is None else str(self._engine.config.db_path)

    def health_status(self) -> str:
        """``starting`` until ready, then ``degraded`` while the database cannot be written, else ``ok``."""
        if not self.ready:
            return "starting"
        return "degraded" if self.database_problem() else "ok"

    def app_status(self) -> dict[str, str | None]:
        """Each ``-u`` app URL -> its last sync error (None: synced)."""
        syncer = self._engine.syncer
        return dict(syncer.status) if syncer is not None else {}

    # -- reads ---------------------------------------------------------------------------------------

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read question (``store.queries``) on the engine's database, off the event loop."""
        return await self._engine.store.read(fn)

    def function(self, ref: str) -> Function | None:
        """The active function named by ``ref``: its slug (``<app>-<fn>``) or its uuid."""
        registry = self._engine.registry
        return registry.get(ref) or next((f for f in registry.functions.values() if f.uuid == ref), None)

    # -- events --------------------------------------------------------------------------------------

    async def accept_events(self, events: list[NewEvent]) -> list[str]:
        """``POST /e``: store the events and their dispatch rows; return their ids.

        With a free worker slot for each, the events are dispatched in the
        commit that stores them (their runs exist when this returns) and the
        runs' first calls go straight to the worker: durable (a crash requeues
        them at start) without a queue round trip or a second flush. A flood
        is stored and left to the worker to lease at its own pace. Store
        errors (disk full, locked) propagate: nothing was stored.
        """
        worker = self._engine.worker
        if len(events) <= worker.free_slots:
            bodies = {ev.internal_id: ev.body for ev in events}
            ids, rest, calls = await self._engine.store.accept_events(
                events, self._engine.executor.lease_until(),
                lambda conn, rows: self._engine.dispatcher.dispatch_accepted_txn(conn, rows, bodies))
            self._engine.metrics.events_accepted.inc(len(ids))
            worker.submit(calls)
            worker.dispatch_now(rest)
            return ids
        ids = await self._engine.store.insert_events(events)
        self._engine.metrics.events_accepted.inc(len(ids))
        worker.wake()
        return ids

    async def send_events(self, events: list[dict[str, Any]]) -> list[str]:
        """The dashboard's send form and rerun: validate, store, wake the worker; the new event ids."""
        from agentcmd.engine.ingest import parse_events

        ids = await self._engine.store.insert_events(parse_events(events, now_ms()))
        self._engine.metrics.events_accepted.inc(len(ids))
        self._engine.worker.wake()
        return ids

    # -- runs ----------------------------------------------------------------------------------------

    async def cancel_run(self, run_id: str, reason: str) -> bool | None:
        """Cancel a run: True if cancelled, False if it had already ended, None if there is no such run."""
        result = await self._engine.store.cancel_run(run_id, reason)
        if result is not None:
            self._engine.worker.wake()
        return result

    async def cancel_function_runs(self, fn: Function, request: CancelRequest, reason: str) -> list[str]:
        """Cancel every Queued/Running run of ``fn`` in ``request``'s range, in one transaction; their ids."""
        from agentcmd.engine.flow.bulkcancel import cancel_runs

        cancelled = await cancel_runs(self._engine.store, fn.slug, request, now_ms(), reason)
        if cancelled:
            self._engine.worker.wake()
        return cancelled

    async def cancel_runs_of(self, ref: str, request: CancelRequest, reason: str) -> list[str] | None:
        """``cancel_function_runs`` of the function named by ``ref``; None if there is no such active function."""
        fn = self.function(ref)
        return None if fn is None else await self.cancel_function_runs(fn, request, reason)

    async def replay(self, fn: Function, request: ReplayRequest) -> list[tuple[str, str]]:
        """Start the function's runs in ``request`` again -> (new run id, replayed run id) pairs."""
        from agentcmd.engine.flow.replay import replay_runs

        engine = self._engine
        pairs = await replay_runs(engine.store, engine.dispatcher, fn, request, engine.clock())
        if pairs:
            engine.worker.wake()
        return pairs

    async def replay_function(self, ref: str, request: ReplayRequest) -> list[tuple[str, str]] | None:
        """``replay`` of the function named by ``ref``; None if there is no such active function."""
        fn = self.function(ref)
        return None if fn is None else await self.replay(fn, request)

    async def resume_run(self, run_id: str, data: dict[str, Any] | None = None) -> Resumed:
        """Resume a Failed/Cancelled run from its first step that did not complete (``flow/resume.py``).

        ``data`` replaces the event data. Raises ``NotFoundError`` (no such run) or
        ``NotResumableError`` (409: not Failed/Cancelled, already resumed, function gone).
        """
        from agentcmd.engine.flow.resume import resume_run

        engine = self._engine
        resumed = await resume_run(engine.store, engine.dispatcher, engine.registry.functions, run_id, data,
                                   engine.clock())
        engine.worker.wake()
        return resumed

    # -- functions and apps --------------------------------------------------------------------------

    async def set_paused(self, ref: str, pause: bool) -> PauseChange | None:
        """Pause or unpause the function named by ``ref`` (slug or uuid) through the executor's gate.

        None if there is no such active function. Unpausing resumes the calls
        the pause parked; the count comes back in ``resumed``.
        """
        fn = self.function(ref)
        if fn is None:
            return None
        gate = self._engine.executor.limits
        if pause:
            return PauseChange(fn.slug, await gate.pause(fn.slug, now_ms()), 0)
        changed, resumed = await gate.unpause(fn.slug)
        return PauseChange(fn.slug, changed, resumed)

    async def sync_url(self, url: str) -> str | None:
        """PUT the app at ``url`` so it registers again; its error, or None once synced."""
        if url.startswith("connect://"):     # engine/connect: nothing to PUT, its workers dial in
            return ("a connect app syncs itself each time one of its workers connects (WORKER_CONNECT); "
                    "restart a worker to sync it again")
        from agentcmd.engine.appsync import Syncer

        engine, config = self._engine, self._engine.config
        syncer = engine.syncer or Syncer(engine.store, [url], engine.server_kind,
                                         config.signing_key if config.production else None,
                                         config.poll_interval, repoll_healthy=False)
        return await syncer.sync_one(url)

    async def register_app(self, body: Any) -> RegisterResult:
        """``POST /fn/register``: store the app and its functions (``InputError`` if the body is wrong).

        The first registration of a ``-u`` app releases the events held for
        it, matched now against its functions; then the worker wakes.
        """
        from agentcmd.engine import registry
        from agentcmd.engine.store import queue

        engine = self._engine
        result = await registry.register(engine.store, engine.registry, body)
        if engine.syncer is not None and engine.syncer.registered(body.get("url") if isinstance(body, dict) else None):
            now = engine.clock()  # the events held for this first registration are matched now
            await engine.store.write(lambda c: queue.release_held_txn(c, now))
        engine.worker.wake()
        return result

    # -- storage (retention: engine/retention.py) ----------------------------------------------------

    async def storage(self) -> dict[str, Any]:
        """``GET /v1/storage`` and the dashboard: the database's size, the oldest kept run, the policy."""
        from agentcmd.engine.retention import storage_view

        pruner = self._engine.pruner
        return storage_view(await pruner.stats(), pruner)

    async def prune(self, older_than_s: float, dry_run: bool) -> PruneReport:
        """Prune finished runs older than ``older_than_s`` now (one pass, small transactions)."""
        return await self._engine.pruner.prune(older_than_s, dry_run)
