"""The engine as an ASGI app: wiring, lifespan (worker + syncer), shutdown.

``Engine(config)`` owns the store, registry, driver, executor, dispatcher,
worker and syncer. ``start()`` opens the database (requeueing every lease
left by a previous process: the crash-recovery story), loads the registry,
starts the worker, and syncs the ``-u`` apps with a bounded wait before
``/health`` turns ready. ``stop(grace_s)`` stops taking work, interrupts the
SDK calls in flight (recorded, same attempt, due at once: docs/engine.md, interrupted calls),
gives the rest of the work the grace period to commit, and closes the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request

from agentcmd.engine.appsync import Syncer
from agentcmd.engine.backoff import Backoff
from agentcmd.engine.clock import Clock, system_clock
from agentcmd.engine.driver import DEFAULT_TIMEOUT_S, Driver
from agentcmd.engine.executor import DEFAULT_APP_WAIT_MS, Executor
from agentcmd.engine.ingest import Dispatcher
from agentcmd.engine.registry import Registry
from agentcmd.engine.store import Store, open_store, waits
from agentcmd.engine.worker import Worker
from agentcmd.errors import AgentcmdError
from agentcmd.signing import BearerCheck
from agentcmd.webauth.options import WebOptions

log = logging.getLogger("agentcmd.engine")


@dataclass
class EngineConfig:
    mode: str = "dev"                       # dev | production
    db_path: Path | None = None             # None: in memory
    event_keys: list[str] = field(default_factory=list)
    signing_key: str | None = None
    sdk_urls: list[str] = field(default_factory=list)
    poll_interval: float = 5.0
    discovery: bool = False
    retry_interval_s: float | None = None   # flat retry backoff instead of Go's table
    concurrency: int = 64
    call_timeout_s: float = DEFAULT_TIMEOUT_S
    app_wait_timeout_s: float = DEFAULT_APP_WAIT_MS / 1000   # how long a run waits for an unreachable app
    sync_wait_s: float = 5.0                # how long /health waits for -u apps at start
    passive_sync: bool = False              # --passive-sync: the -u apps register themselves (Syncer)
    grace_s: float = 10.0
    host: str = "127.0.0.1"                 # the bind host: beyond loopback, production's dashboard needs a login
    dashboard_auth: bool = False            # --dashboard-auth: log in to the dashboard even on loopback
    dashboard_token: str | None = field(default=None, repr=False)
    web: WebOptions = field(default_factory=WebOptions)  # trusted proxies, public URL, revoked sessions file
    allowed_hosts: list[str] = field(default_factory=list)  # Host names beyond loopback + bind (httpedge.hosts)

    @property
    def production(self) -> bool:
        return self.mode == "production"


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
        self._bearer = BearerCheck(config.signing_key) if config.production and config.signing_key else None
        self.syncer: Syncer | None = None
        self.worker: Worker = None  # type: ignore[assignment]
        self._tasks: list[asyncio.Task[Any]] = []
        self.dashboard = LazyDashboard(self)
        self._stop = asyncio.Event()

    def database_problem(self) -> str | None:
        """Why the database cannot be written right now (disk full, read-only, locked), or None."""
        err = self.store.db.write_error if self.store is not None else None
        return f"{err.what} ({err.fix})" if err is not None else None

    def store_description(self) -> str:
        return "in memory" if self.config.db_path is None else str(self.config.db_path)

    def authorized(self, request: Request) -> bool:
        """Production: a bearer with the signing key (raw or hashed). Dev: always."""
        if self._bearer is None:
            return True
        return self._bearer.ok(request.headers.get("authorization"))

    def open(self) -> None:
        """Open the store (raises StoreError subclasses) and build the components."""
        self.store = open_store(self.config.db_path)
        lease_ms = int((self.config.call_timeout_s + 60) * 1000)
        backoff = Backoff(flat_ms=int(self.config.retry_interval_s * 1000)
                          if self.config.retry_interval_s is not None else None)
        self.executor = Executor(self.store, self.registry, self.driver, backoff, self.clock, lease_ms,
                                 int(self.config.app_wait_timeout_s * 1000))
        self.dispatcher = Dispatcher(self.store, self.registry, self.clock, lease_ms)
        self.worker = Worker(self.store, self.executor, self.dispatcher, self.clock, self.config.concurrency)
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
        self.store.db.set_dispatch_filter(lambda name: bool(self.registry.candidates(name)))
        worker = asyncio.create_task(self.worker.run(), name="agentcmd-worker")
        worker.add_done_callback(self._worker_ended)
        self._tasks.append(worker)
        if self.config.discovery and not self.config.production:
            from agentcmd.engine.portscan import discover_loop

            self._tasks.append(asyncio.create_task(discover_loop(self, self._stop), name="agentcmd-discovery"))
        self._tasks.append(asyncio.create_task(self.driver.warm_up(), name="agentcmd-warm-up"))
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

    async def stop(self) -> None:
        """Stop leasing, give in-flight calls ``grace_s``, close the driver and the database."""
        self.ready = False
        self._stop.set()
        cut = await self.worker.stop(self.config.grace_s) if self.worker is not None else 0
        if cut:
            log.warning("%d queue tasks did not finish within %.0f s; they resume at the next start",
                        cut, self.config.grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.driver.close()
        if self.store is not None:
            self.store.close()


class LazyDashboard:
    """The dashboard (``engine/dashboard``), built on first use or right after ready.

    It runs on FastAPI and Jinja, ~0.5 s of imports: importing them before
    serving would double the time to ``/health`` ready, so the engine's own
    routes come up first and the dashboard's modules are imported in a
    thread once the engine is ready.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._app: Any = None

    def app(self) -> Any:
        if self._app is None:
            from agentcmd.engine.dashboard.mount import dashboard_app

            self._app = dashboard_app(self.engine)
        return self._app

    async def warm_up(self) -> None:
        import importlib

        await asyncio.to_thread(importlib.import_module, "agentcmd.engine.dashboard.mount")
        self.app()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app()(scope, receive, send)


def build_app(engine: Engine) -> Starlette:
    """The ASGI app; its lifespan starts and stops ``engine`` (``engine.open()`` first)."""
    from agentcmd.engine.api import events, graphql, health, register, rest
    from agentcmd.engine.api.errors import agentcmd_error_handler, internal_error_handler
    from agentcmd.engine.flow import pause, replay

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    from starlette.routing import Mount

    routes = [*health.routes(engine), *events.routes(engine), *register.routes(engine), *rest.routes(engine),
              *pause.routes(engine), *replay.routes(engine), *graphql.routes(engine),
              Mount("", app=engine.dashboard)]  # the dashboard answers the rest
    from starlette.middleware import Middleware

    from agentcmd.engine.edge import engine_edge_policy
    from agentcmd.httpedge import EdgeMiddleware

    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(EdgeMiddleware, policy=engine_edge_policy(engine.config))],
                     exception_handlers={AgentcmdError: agentcmd_error_handler, Exception: internal_error_handler})
