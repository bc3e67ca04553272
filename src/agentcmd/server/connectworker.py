"""A connect worker: the project's workflows served over an outbound WebSocket (``agentcmd worker``).

The app server waits for the engine to call it over HTTP; a connect worker
dials the engine instead (the official SDK's ``inngest.connect``): it asks
``POST /v0/connect/start`` for a gateway address and a session token, opens
a WebSocket to the gateway and runs the executor requests that come over it.
So it needs no inbound port, and a step that runs for an hour is no HTTP call
held open for an hour (the SDK extends its lease while the step runs).

The workflows, the runtime (project, data directory, the engine's run status
for the cancel watcher) and the SDK client are the app server's own
(``server/app.py`` ``load_workflows``/``create_client``): the same app id
(``agentcmd``) and function ids, so one engine cannot tell which of the two
serves a run. Several workers may connect at once (this machine and
others); the engine spreads the runs over them.

Before connecting, one ``POST /v0/connect/start`` of our own turns the
usual failures into one clear error each, at once, instead of the SDK's
five retries over twenty seconds: engine unreachable, key refused (401),
no gateway (404 or 503). The SDK handles everything after that:
heartbeats, lease extension, reconnecting when the engine restarts.

Signals: the first SIGTERM/SIGINT drains (the SDK sends WORKER_PAUSE, gets
no new work, finishes its in-flight steps, exits 0); a second one stops the
running steps' commands and exits at once (the engine requeues what was in
flight without using an attempt). SIGHUP reloads the workflows: a new
connection with the new list, then the old one drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from agentcmd.errors import AgentcmdError, AuthError, ConfigError, ProtocolError, UnavailableError
from agentcmd.mode import Mode
from agentcmd.server.connectmode import READY_LINE, WAITING_LINE

log = logging.getLogger("agentcmd.worker")

START_PATH = "/v0/connect/start"
PREFLIGHT_TIMEOUT_SECONDS = 10.0
EXIT_FORCED = 130
RETRY_SECONDS = 5.0
_KEY_FIX = ("set INNGEST_SIGNING_KEY (or signing_key in the file 'agentcmd config path' prints) to the signing "
            "key the engine runs with; on the engine's machine 'agentcmd config' shows where it is")


@dataclasses.dataclass(frozen=True)
class WorkerOptions:
    """What ``agentcmd worker`` was asked to do (None: the settings' value)."""

    mode: Mode
    engine_url: str | None = None
    event_url: str | None = None
    instance_id: str | None = None
    max_concurrency: int | None = None
    project_dir: Path | None = None
    gateway_url: str | None = None
    stop_steps: bool = False          # a stop interrupts the running steps at once (the supervisor's worker)
    wait_for_workflows: bool = False  # no workflows yet: wait for a reload (SIGHUP) instead of refusing


@dataclasses.dataclass(frozen=True)
class WorkerPlan:
    """The worker's resolved addresses and keys (keys are never logged)."""

    mode: Mode
    engine_url: str
    event_url: str
    instance_id: str
    signing_key: str | None
    event_key: str | None

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """The process environment the SDK reads: its mode and base URLs (``inngest_env``)."""
        from agentcmd.inngest_env import inngest_env

        env = inngest_env(self.mode, self.engine_url, base=base, event_key=self.event_key,
                          signing_key=self.signing_key)
        if self.event_url != self.engine_url:
            env["INNGEST_EVENT_API_BASE_URL"] = self.event_url
        return env


def plan_worker(options: WorkerOptions) -> WorkerPlan:
    """Resolve the URLs and keys; refuse production without a signing key before anything connects."""
    from agentcmd import handover
    from agentcmd.config import load_settings
    from agentcmd.endpoint import engine_url

    url = (options.engine_url or engine_url()).rstrip("/")
    _check_url(url, "--engine-url")
    event_url = (options.event_url or url).rstrip("/")
    _check_url(event_url, "--event-url")
    settings = load_settings()
    signing_key = event_key = None
    if options.mode is Mode.PRODUCTION:
        signing_key = handover.key("INNGEST_SIGNING_KEY") or settings.secret("signing_key")
        event_key = handover.key("INNGEST_EVENT_KEY") or settings.secret("event_key")
        if not signing_key:
            raise ConfigError("a production worker needs the engine's signing key, and none is configured",
                              _KEY_FIX + "; or run against a dev engine with --dev", code="missing_signing_key")
    instance = options.instance_id or socket.gethostname()
    return WorkerPlan(options.mode, url, event_url, instance, signing_key, event_key)


def _check_url(url: str, flag: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{flag} {url!r} is not an http(s) URL", f"pass e.g. {flag} http://engine-host:8288")


def _engine_message(body: bytes) -> str:
    import json

    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return body.decode(errors="replace").strip()[:300]
    if isinstance(answer, dict):
        parts = [str(answer.get(k)) for k in ("error", "message", "hint") if answer.get(k)]
        return "; ".join(parts)[:300]
    return str(answer)[:300]


async def check_engine(plan: WorkerPlan) -> None:
    """``POST /v0/connect/start`` once, as the SDK will: raise the clear error of what would fail."""
    import httpx

    from agentcmd.signing import hash_signing_key

    url = plan.engine_url + START_PATH
    headers = {"Content-Type": "application/protobuf"}
    if plan.signing_key:
        headers["Authorization"] = f"Bearer {hash_signing_key(plan.signing_key)}"
    if env_name := os.environ.get("INNGEST_ENV"):
        headers["X-Inngest-Env"] = env_name
    try:
        async with httpx.AsyncClient(timeout=PREFLIGHT_TIMEOUT_SECONDS) as http:
            resp = await http.post(url, content=b"", headers=headers)  # an empty StartRequest
    except httpx.HTTPError as exc:
        raise UnavailableError(f"cannot reach the engine at {plan.engine_url} ({type(exc).__name__}: {exc})",
                               "start the engine, or point --engine-url (or INNGEST_BASE_URL) at it; the worker "
                               "dials out, so only the engine's port and its gateway port (the engine's port + 1 "
                               "by default) must be reachable from here", code="engine_unreachable") from None
    message = _engine_message(resp.content)
    if resp.status_code in (401, 403):
        raise AuthError(f"the engine at {plan.engine_url} refused the worker's credentials ({resp.status_code}"
                        + (f": {message}" if message else "") + ")",
                        _KEY_FIX if plan.mode is Mode.PRODUCTION else
                        "this engine runs in production: run the worker with --production and its signing key",
                        code="unauthorized")
    if resp.status_code in (404, 405, 415):   # 415: an older agentcmd engine's JSON-only catch-all
        raise UnavailableError(f"the engine at {plan.engine_url} has no connect gateway ({START_PATH} answered "
                               f"{resp.status_code})", "upgrade the engine, or serve the workflows over HTTP "
                               "('agentcmd dev|start --worker-mode http')", code="no_connect_gateway")
    if resp.status_code == 503:
        raise UnavailableError(f"the engine at {plan.engine_url} runs no connect gateway"
                               + (f": {message}" if message else ""),
                               "run 'agentcmd dev|start --worker-mode connect' (http mode starts the engine without "
                               "its gateway), or 'agentcmd engine dev|start' without --no-connect, on a free "
                               "--connect-port",
                               code="no_connect_gateway")
    if resp.status_code != 200:
        raise ProtocolError(f"the engine at {plan.engine_url} answered {resp.status_code} to POST {START_PATH}"
                            + (f": {message}" if message else ""), "see the engine's log")


class ConnectWorker:
    """One process serving the workflows over one connection at a time (two during a reload)."""

    def __init__(self, plan: WorkerPlan, options: WorkerOptions) -> None:
        self.plan = plan
        self.options = options
        self._stopping = False
        self._reloading = False
        self._tasks: dict[Any, asyncio.Task[None]] = {}   # connection -> its start() task
        self._serving: tuple[Any, list[Any]] | None = None  # the client and workflows of the newest connection
        self._background: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()   # a connection was launched, or a stop asked

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """A fire-and-forget task, kept referenced until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _build(self) -> tuple[Any, list[Any]]:
        """The SDK client and the workflows: the app server's (``server/app.py``)."""
        from agentcmd.server.app import create_client, load_workflows

        loaded = load_workflows(self.options.project_dir)
        functions = list(loaded.discovered.workflows.values())
        if not functions:
            from agentcmd.workflows.loading import WORKFLOWS_DIR

            where = loaded.runtime.project_dir / WORKFLOWS_DIR
            broken = (f" ({len(loaded.discovered.errors)} file(s) failed to load, see above)"
                      if loaded.discovered.errors else "")
            raise ConfigError(f"no workflows to serve in {where}{broken}",
                              "add a workflow file there (see docs/workflows.md), or pass --project with the "
                              "project that holds them", code="no_workflows")
        client = create_client(signing_key=self.plan.signing_key, event_key=self.plan.event_key)
        return client, functions

    def _launch(self, client: Any, functions: list[Any]) -> Any:
        from inngest.connect import connect

        rewrite: Callable[[str], str] | None = None
        if self.options.gateway_url:
            gateway = self.options.gateway_url
            rewrite = lambda _endpoint: gateway  # noqa: E731 - the SDK wants a callable
        conn = connect([(client, functions)], instance_id=self.plan.instance_id, shutdown_signals=[],
                       max_worker_concurrency=self.options.max_concurrency, rewrite_gateway_endpoint=rewrite)
        loop = asyncio.get_running_loop()
        self._serving = (client, functions)
        self._tasks[conn] = loop.create_task(conn.start())
        self._changed.set()
        self._spawn(self._announce(conn, [f.spec.id for f in functions]))
        return conn

    async def run(self) -> int:
        built: tuple[Any, list[Any]] | None = None
        waiting: str | None = None
        try:
            built = self._build()
        except ConfigError as exc:
            if exc.code != "no_workflows" or not self.options.wait_for_workflows:
                raise
            waiting = exc.what
        await check_engine(self.plan)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self._reload()))
        try:
            if built is not None:
                self._launch(*built)
            else:
                log.info("%s: %s", waiting, WAITING_LINE)   # after the handlers: a SIGHUP from now on is a reload
                await self._first_workflows()
            await self._serve()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        from agentcmd.workflows import streamlog

        await streamlog.flush_all()  # the last streamed output reaches the disk
        log.info("worker stopped")
        return 0

    async def _serve(self) -> None:
        """Until every connection has closed after a stop; a connection the engine dropped for good is
        opened again (an engine down longer than the SDK's own retries), a refused key ends the worker."""
        from inngest.connect._internal.errors import NonRetryableError

        while self._tasks:
            done, _ = await asyncio.wait(list(self._tasks.values()), return_when=asyncio.FIRST_COMPLETED)
            for conn, task in list(self._tasks.items()):
                if task not in done:
                    continue
                del self._tasks[conn]
                exc = task.exception()
                if self._stopping or self._tasks:
                    continue   # drained, or replaced by a reload
                if isinstance(exc, NonRetryableError):
                    raise _sdk_error(exc, self.plan)
                log.warning("lost the engine at %s (%s); connecting again in %g s", self.plan.engine_url,
                            exc or "connection closed", RETRY_SECONDS)
                self._changed.clear()
                with contextlib.suppress(TimeoutError):   # a stop ends the wait at once
                    await asyncio.wait_for(self._changed.wait(), RETRY_SECONDS)
                if not self._stopping and not self._tasks and self._serving is not None:   # (a reload may have)
                    self._launch(*self._serving)

    async def _first_workflows(self) -> None:
        """No workflows at start (``wait_for_workflows``): until a reload finds some, or a stop."""
        while not self._tasks and not self._stopping:
            self._changed.clear()
            await self._changed.wait()

    async def _announce(self, conn: Any, ids: list[str]) -> None:
        from inngest.connect import ConnectionState

        await conn.wait_for_state(ConnectionState.ACTIVE)
        log.info(READY_LINE + " %s as instance %r (connection %s): serving %d workflow(s): %s",
                 self.plan.engine_url, self.plan.instance_id, conn.get_connection_id(), len(ids), ", ".join(ids))

    def _on_stop(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self._stopping:
            from agentcmd.workflows.process import kill_all_now

            # At once, before any result can be sent: the engine sees the connection drop and gives the steps
            # to another worker as interrupted (no attempt used), never as failed.
            stopped = kill_all_now()
            log.warning("%s again: stopped now (%d step command(s) killed; the engine gives their steps to "
                        "another worker)", name, stopped)
            logging.shutdown()
            os._exit(EXIT_FORCED)
        self._stopping = True
        self._changed.set()
        if self.options.stop_steps:
            from agentcmd.workflows.process import interrupt_all

            log.info("%s: stopping: %d running step command(s) stopped, the engine runs them again", name,
                     interrupt_all())
        else:
            log.info("%s: draining: no new work, finishing the steps in flight (%s again stops at once)",
                     name, name)
        for conn in list(self._tasks):
            self._spawn(conn.close())

    async def _reload(self) -> None:
        """SIGHUP: connect with the workflows as they are now, then drain the old connection."""
        if self._stopping or self._reloading:
            return
        self._reloading = True
        try:
            from inngest.connect import ConnectionState

            try:
                client, functions = await asyncio.to_thread(self._build)
            except AgentcmdError as exc:
                log.error("reload refused, still serving the previous workflows: %s", exc.what)
                return
            old = list(self._tasks)
            fresh = self._launch(client, functions)
            await fresh.wait_for_state(ConnectionState.ACTIVE)
            log.info("reloaded: serving %d workflow(s): %s", len(functions),
                     ", ".join(f.spec.id for f in functions))
            for conn in old:
                await conn.close()
        finally:
            self._reloading = False


def _sdk_error(exc: Exception, plan: WorkerPlan) -> AgentcmdError:
    """What the SDK's connection ended with, as an error the CLI prints."""
    from inngest.connect._internal.errors import NonRetryableError

    if isinstance(exc, NonRetryableError):
        return AuthError(f"the engine at {plan.engine_url} refused the worker's credentials ({exc})", _KEY_FIX,
                         code="unauthorized")
    return UnavailableError(f"the connection to the engine at {plan.engine_url} ended: {exc}",
                            "check that the engine runs and its gateway port is reachable, then start the worker "
                            "again", code="connect_failed")


def run_worker(options: WorkerOptions) -> int:
    """Resolve, check, connect, serve until a signal; the exit status (0 after a drain)."""
    plan = plan_worker(options)
    new_env = plan.environment(dict(os.environ))
    for name in [n for n in os.environ if n not in new_env]:
        del os.environ[name]
    os.environ.update(new_env)
    log.info("worker (%s mode) for the engine at %s, instance %r", plan.mode.value, plan.engine_url,
             plan.instance_id)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(ConnectWorker(plan, options).run())
    return EXIT_FORCED
