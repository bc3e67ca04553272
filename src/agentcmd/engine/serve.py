"""Run the engine under uvicorn on a socket we bind ourselves.

Binding first lets "port in use" be a clear error (exit 2) instead of a
uvicorn traceback, and lets tests pass port 0. uvicorn turns SIGINT/SIGTERM
into a graceful shutdown: the lifespan stops the worker (bounded grace for
in-flight SDK calls) and closes the database; the process exits 0.
"""

from __future__ import annotations

import errno
import socket

from agentcmd.engine.app import Engine, EngineConfig, build_app
from agentcmd.engine.listener import listen
from agentcmd.errors import PortInUseError
from agentcmd.observe import runlog


def bind(host: str, port: int) -> socket.socket:
    try:
        sock = listen(host, port, 2048)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror}",
                                 f"stop whatever uses port {port} (e.g. 'lsof -i :{port}') or pass --port") from None
        raise
    sock.set_inheritable(True)
    return sock


def _server_class() -> type:
    import contextlib
    import signal
    import threading
    from collections.abc import Callable, Iterator

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown (exit 143/130);
        the engine's contract is exit 0 after a clean stop, so it only sets the flags.

        ``before_shutdown`` runs as the shutdown starts, before uvicorn waits for
        open connections: the live dashboard streams see ``engine.closing`` and end,
        so they never hold the shutdown up."""

        before_shutdown: Callable[[], None] | None = None

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if self.before_shutdown is not None:
                self.before_shutdown()
            await super().shutdown(sockets)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            sigs = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server


def start_line(config: EngineConfig, url: str) -> str:
    if config.production:
        return (f"agentcmd engine: production mode, database {config.db_path} (SQLite WAL), listening on {url}; "
                "run history and in-flight runs persist across restarts")
    return f"agentcmd engine: dev mode, database in memory (gone on exit), listening on {url}"


def attach_connect(engine: Engine, host: str, engine_port: int) -> None:
    """Give ``engine`` its gateway (``engine.connect``) when connect is on; call after ``engine.open()``."""
    config = engine.config
    if not config.connect:
        return
    from agentcmd.engine.connect.gateway import Gateway, Hooks
    from agentcmd.engine.connect.server import GatewayServer, gateway_socket

    sock, why = gateway_socket(host, engine_port, config.connect_port)
    from agentcmd.engine.edge import engine_edge_policy
    from agentcmd.engine.store import queue

    store = engine.store

    async def extend(item_id: int, until: int) -> None:
        await store.write(lambda c: queue.extend_lease_txn(c, item_id, until))

    hooks = Hooks(register=engine.commands.register_app, wake=engine.worker.wake, extend_queue_lease=extend,
                  queue_lease_ms=engine.executor.lease_ms)
    gateway = Gateway(hooks, production=config.production)
    if why:
        gateway.unavailable = why
    engine.connect = gateway
    engine.driver.connect = gateway
    from agentcmd.engine.connect.metrics import ConnectCollector

    engine.metrics.registry.register(ConnectCollector(gateway))
    engine.connect_server = GatewayServer(gateway, sock, host, engine_edge_policy(config).hosts)


def serve(config: EngineConfig, host: str, port: int) -> int:
    """Serve until SIGINT/SIGTERM; return the exit code. Raises AgentcmdError on bad input."""
    import uvicorn

    runlog.configure_logging()    # text, or JSON with run/step ids (AGENTCMD_LOG_FORMAT; observe/runlog.py)
    from agentcmd.httpedge.redact import install_access_log_filter

    install_access_log_filter()  # no event key (POST /e/<key>) in uvicorn's logs
    sock = bind(host, port)
    engine = Engine(config)
    try:
        engine.open()
    except BaseException:
        sock.close()
        raise
    actual_port = sock.getsockname()[1]
    try:
        attach_connect(engine, host, actual_port)    # the connect gateway on --connect-port (engine port + 1)
    except BaseException:
        sock.close()
        engine.store.close()
        raise
    url = f"http://{host}:{actual_port}"
    print(start_line(config, url), flush=True)
    app = build_app(engine)
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    # proxy_headers=False: X-Forwarded-* are believed only from configured trusted proxies (webauth.proxy)
    uv_config = uvicorn.Config(app, log_level="warning", access_log=False, loop=loop, lifespan="on",
                               proxy_headers=False, timeout_graceful_shutdown=max(1, int(config.grace_s) + 5),
                               **runlog.uvicorn_log_options())
    server = _server_class()(uv_config)
    server.before_shutdown = engine.begin_closing
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if engine.store is not None:
            engine.store.close()
    if engine.fatal:
        print(f"agentcmd engine: stopped after a fatal error ({engine.fatal}); see the log above", flush=True)
        return 1
    print("agentcmd engine: stopped", flush=True)
    return 0
