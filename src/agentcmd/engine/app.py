"""The engine as an ASGI app: wiring, lifespan (worker + syncer), shutdown.

``Engine(config)`` owns the store, registry, driver, executor, dispatcher,
worker and syncer. ``start()`` opens the database (requeueing every lease
left by a previous process: the crash-recovery story), loads the registry,
starts the worker, and syncs the ``-u`` apps with a bounded wait before
``/health`` turns ready. ``stop(grace_s)`` stops taking work, interrupts the
SDK calls in flight (recorded, same attempt, due at once: docs/engine.md, interrupted calls),
gives the rest of the work the grace period to commit, and closes the database.

``engine.commands`` (``engine/commands.py``) is what the HTTP routes and the
dashboard get: ``build_app`` hands them the facade, never the engine. This
module sits above everything it wires, and nothing under ``engine/`` but
``serve.py`` imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from agentcmd.engine.appsync import Syncer
from agentcmd.engine.backoff import Backoff
from agentcmd.engine.changes import Changes
from agentcmd.engine.clock import Clock, system_clock
from agentcmd.engine.commands import Commands
from agentcmd.engine.config import EngineConfig as EngineConfig  # where callers have always found it
from agentcmd.engine.connect.server import GatewayServer
from agentcmd.engine.connect.view import ConnectView
from agentcmd.engine.driver import Driver
from agentcmd.engine.executor import Executor
from agentcmd.engine.ingest import Dispatcher
from agentcmd.engine.metrics import EngineMetrics
from agentcmd.engine.registry import Registry
from agentcmd.engine.retention import Pruner
from agentcmd.engine.store import Store, open_store, waits
from agentcmd.engine.worker import Worker
from agentcmd.errors import AgentcmdError
from agentcmd.observe import tracing

log = logging.getLogger("agentcmd.engine")


class Engine:
    def __init__(self, config: EngineConfig, clock: Clock = system_clock) -> None:
        self.config = config
        self.clock = clock
        self.server_kind = "cloud" if config.production else "dev"
        self.ready = False
        self.fatal: str | None = None     # set when the engine must stop with exit 1 (see _worker_ended)
        self.store: Store = None  # type: ignore[assignment]  # set in open()
        self.registry = Registry()
        self.driver = Driver(config.signing_key if config.production else None, config.call_timeout_s,
                             self.server_kind)
        self.syncer: Syncer | None = None
        self.worker: Worker = None  # type: ignore[assignment]
        self.executor: Executor = None  # type: ignore[assignment]
        self.dispatcher: Dispatcher = None  # type: ignore[assignment]
        self.pruner: Pruner = None  # type: ignore[assignment]  # retention (engine/retention.py), set in open()
        self.connect: ConnectView | None = None   # the connect gateway (engine/connect), when on
        self.connect_server: GatewayServer | None = None   # its WebSocket server (serve.attach_connect)
        self._tasks: list[asyncio.Task[Any]] = []
        self.changes = Changes()          # bumped after each commit that changed a row: live pages wait on it
        self.closing = False              # shutting down: live streams end (serve.py sets it before uvicorn drains)
        self.commands = Commands(self)     # what the HTTP routes and the dashboard may ask of the engine
        self.dashboard = LazyDashboard(self.commands)
        # GET /metrics, per engine (tests run several in one process); spans too when OTLP is configured
        self.metrics = EngineMetrics(tracing.from_env("agentcmd-engine"))
        self._stop = asyncio.Event()

    def open(self) -> None:
        """Open the store (raises StoreError subclasses) and build the components."""
        self.store = open_store(self.config.db_path)
        self.store.db.on_change = self.changes.bump
        self.store.db.set_run_observer(self.metrics.on_run)
        lease_ms = int((self.config.call_timeout_s + 60) * 1000)
        backoff = Backoff(flat_ms=int(self.config.retry_interval_s * 1000)
                          if self.config.retry_interval_s is not None else None)
        self.executor = Executor(self.store, self.registry, self.driver, backoff, self.clock, lease_ms,
                                 int(self.config.app_wait_timeout_s * 1000), self.metrics)
        self.dispatcher = Dispatcher(self.store, self.registry, self.clock, lease_ms)
        self.worker = Worker(self.store, self.executor, self.dispatcher, self.clock, self.config.concurrency)
        self.pruner = Pruner(self.store, self.clock, self.config.retention_s)
        if self.config.sdk_urls:
            self.syncer = Syncer(self.store, self.config.sdk_urls, self.server_kind,
                                 self.config.signing_key if self.config.production else None,
                                 self.config.poll_interval, repoll_healthy=not self.config.production,
                                 passive=self.config.passive_sync)
            self.dispatcher.holding = self.syncer.holding

    async def start(self) -> None:
        now = self.clock()
        interrupted = await self.store.write(lambda c: waits.resume_txn(c, now))
        requeued = await self.store.requeue_leases(None)
        if requeued:
            log.info("resuming %d queue items left in flight by the previous engine process (%d SDK calls "
                     "interrupted: they run again now, same attempt)", requeued, interrupted)
        await self.registry.load(self.store)
        if self.connect_server is not None:
            # Its socket is bound already (serve.attach_connect): workers that dial in now wait in its
            # backlog while websockets is imported and the server starts, off the path to /health.
            self._tasks.append(asyncio.create_task(self.connect_server.start(), name="agentcmd-connect"))
        self.store.db.set_dispatch_filter(lambda name: bool(self.registry.candidates(name)))
        worker = asyncio.create_task(self.worker.run(), name="agentcmd-worker")
        worker.add_done_callback(self._worker_ended)
        self._tasks.append(worker)
        if self.config.discovery and not self.config.production:
            from agentcmd.engine.portscan import discover_loop

            scan = discover_loop(self.store, self.server_kind, self.config.poll_interval, self._stop)
            self._tasks.append(asyncio.create_task(scan, name="agentcmd-discovery"))
        self._tasks.append(asyncio.create_task(self.driver.warm_up(), name="agentcmd-warm-up"))
        self._tasks.append(asyncio.create_task(self.pruner.run(self._stop), name="agentcmd-retention"))
        self._tasks.append(asyncio.create_task(self._warm_up_dashboard(), name="agentcmd-dashboard-warm-up"))
        if self.syncer is None:
            self.ready = True
        else:
            # The SDK answers our PUT by POSTing /fn/register back to us, so the
            # server must already be accepting requests: sync in the background
            # and let /health say 503 until it is done or the bounded wait ends.
            self._tasks.append(asyncio.create_task(self._initial_sync(self.syncer), name="agentcmd-sync"))

    async def _warm_up_dashboard(self) -> None:
        await self.dashboard.warm_up()
        # Everything imported so far (the web stack, CEL, the SDK protocol) lives as long as the
        # process: moved out of the collector's reach, a full collection under load pauses the
        # event loop for a few milliseconds instead of 30-55 ms (measured: docs/benchmarks.md).
        gc.freeze()

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        """The worker loop must only end on ``stop()``: anything else is fatal, not a silent stall.

        An engine that accepts events but never runs them is worse than one
        that exits: so log why, and stop the process with exit 1 (everything
        is in the database; the next start resumes it).
        """
        if self._stop.is_set() or task.cancelled():
            return
        exc = task.exception()
        log.critical("the engine's worker stopped unexpectedly (%s); shutting down so the engine can be "
                     "restarted, where every queued and in-flight run resumes", exc or "no error",
                     exc_info=exc)
        self.fatal = f"worker stopped: {exc!r}"
        self.ready = False
        os.kill(os.getpid(), signal.SIGTERM)

    async def _initial_sync(self, syncer: Syncer) -> None:
        sync = asyncio.create_task(syncer.sync_all())
        done, _ = await asyncio.wait({sync}, timeout=self.config.sync_wait_s)
        if not done:
            log.warning("apps not synced after %.0f s; serving anyway and retrying", self.config.sync_wait_s)
        self.ready = True
        await syncer.run(self._stop)

    def begin_closing(self) -> None:
        """The server starts shutting down: open live streams end now (``closing``), before the drain."""
        self.closing = True

    async def stop(self) -> None:
        """Stop leasing, give in-flight calls ``grace_s``, close the driver and the database."""
        self.ready = False
        self.closing = True
        self._stop.set()
        cut = await self.worker.stop(self.config.grace_s) if self.worker is not None else 0
        if self.connect_server is not None:
            await self.connect_server.stop()     # GATEWAY_CLOSING: the workers reconnect once the engine is back
        if cut:
            log.warning("%d queue tasks did not finish within %.0f s; they resume at the next start",
                        cut, self.config.grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.driver.close()
        self.metrics.close()       # queued spans are exported
        if self.store is not None:
            self.store.close()


class LazyDashboard:
    """The dashboard (``engine/dashboard``), built on first use or right after ready.

    It runs on FastAPI and Jinja, ~0.5 s of imports: importing them before
    serving would double the time to ``/health`` ready, so the engine's own
    routes come up first and the dashboard's modules are imported in a
    thread once the engine is ready.
    """

    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self._app: Any = None

    def app(self) -> Any:
        if self._app is None:
            from agentcmd.engine.dashboard.mount import dashboard_app

            self._app = dashboard_app(self.commands)
        return self._app

    async def warm_up(self) -> None:
        import importlib

        await asyncio.to_thread(importlib.import_module, "agentcmd.engine.dashboard.mount")
        self.app()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app()(scope, receive, send)


def build_app(engine: Engine) -> Starlette:
    """The ASGI app; its lifespan starts and stops ``engine`` (``engine.open()`` first).

    The routes get the engine's command facade (``engine.commands``), never the engine itself.
    """
    from agentcmd.engine.api import (
        cancellations,
        events,
        functions,
        graphql,
        health,
        metrics,
        register,
        rest,
        resume,
        storage,
    )
    from agentcmd.engine.api import connect as connect_routes
    from agentcmd.engine.api.errors import agentcmd_error_handler, internal_error_handler

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    from starlette.routing import Mount

    commands = engine.commands
    routes = [*health.routes(commands), *events.routes(commands), *register.routes(commands),
              *rest.routes(commands), *functions.routes(commands), *graphql.routes(commands),
              *cancellations.routes(commands), *resume.routes(commands), *storage.routes(commands),
              *metrics.routes(commands), *connect_routes.routes(commands),
              Mount("", app=engine.dashboard)]  # the dashboard answers the rest
    from starlette.middleware import Middleware

    from agentcmd.engine.edge import engine_edge_policy
    from agentcmd.httpedge import EdgeMiddleware

    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(EdgeMiddleware, policy=engine_edge_policy(engine.config))],
                     exception_handlers={AgentcmdError: agentcmd_error_handler, Exception: internal_error_handler})
