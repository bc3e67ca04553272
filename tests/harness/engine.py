"""Engine fixtures for every folder: a real engine subprocess, a real SDK app, and polling helpers.

* ``engine_factory(mode="dev"|"production", sqlite_dir=None, args=(), env=None)`` starts
  ``python -m agentcmd engine dev|start --port <free>`` and waits for ``/health``.
  The returned ``EngineProc`` has ``url``, ``headers`` (the bearer in production),
  ``event_key``, ``signing_key``, ``kill()`` (SIGKILL), ``stop()`` (SIGTERM) and
  ``output()``. Processes are stopped at teardown; their logs print on failure.
* ``sdk_factory(engine, client, functions)`` serves the official
  ``inngest`` SDK (FastAPI under uvicorn, on 127.0.0.1:0 in a thread) with a client
  pointed at ``engine``, and syncs it by ``PUT`` (as the engine would).
* ``client_for(engine, app_id)`` builds that ``inngest.Inngest`` client, to define functions.
* ``send_event(engine, name, data)`` -> internal event id; ``runs_for_event(engine, id, n)``
  -> run ids; ``wait_for_run_status(engine, run_id, status)`` -> the run dict, failing
  with the last state seen.
* ``stack = sdk_stack(prefix, build)`` in a test module: a module-scoped SDK app on
  ``module_engine`` (both modes); ``engine_cli(*args)`` runs one ``agentcmd`` command.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.keys import ENGINE_EVENT_KEY, ENGINE_SIGNING_KEY
from tests.harness.processes import free_ports, run_engine_cli

# inngest 0.5.19 defines a pydantic model with a class-based Config; the deprecation
# warning fires once, at import, so import it here with that one warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import inngest
    import inngest.fast_api

SIGNING_KEY, EVENT_KEY = ENGINE_SIGNING_KEY, ENGINE_EVENT_KEY


@dataclass
class EngineProc:
    mode: str
    port: int
    args: list[str]
    env: dict[str, str]
    log_path: Path
    sqlite_dir: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    signing_key: str = SIGNING_KEY
    event_key: str = EVENT_KEY
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signing_key}"} if self.mode == "production" else {}

    @property
    def key(self) -> str:
        return self.event_key if self.mode == "production" else "NO_EVENT_KEY_SET"

    def start(self, wait: bool = True, extra_env: dict[str, str] | None = None) -> EngineProc:
        log = self.log_path.with_suffix(f".{len(self.logs)}.log")
        self.logs.append(log)
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "agentcmd", *self.args],
                                         stdout=fh, stderr=subprocess.STDOUT,
                                         env={**self.env, **(extra_env or {})}, start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"engine exited with {self.proc.returncode}:\n{self.output()}")
            try:
                r = httpx.get(self.url + "/health", timeout=1)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.02)
        raise AssertionError(f"engine not ready after {timeout} s (last: {last}):\n{self.output()}")

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, timeout=5, **kw)


def _make_engine(base: Path, index: int, mode: str = "dev", sqlite_dir: Path | None = None,
                 args: tuple[str, ...] = (), env: dict[str, str] | None = None, port: int | None = None) -> EngineProc:
    cmd = "dev" if mode == "dev" else "start"
    chosen, gateway = (port, None) if port is not None else free_ports(2)
    full = ["engine", cmd, "--port", str(chosen), "--retry-interval", "0.2", "--grace", "3"]
    if gateway is not None and not {"--connect-port", "--no-connect"} & set(args):
        # The gateway's default port (the engine's + 1) was never checked and may be anyone's: a taken one
        # turns the gateway off with a warning (and /v0/connect/start into a 503) that tests then saw.
        full += ["--connect-port", str(gateway)]
    if mode == "dev":
        full.append("--no-discovery")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    base_env["AGENTCMD_HOME"] = str(base / "agentcmd-home")
    if mode == "production":
        sqlite_dir = sqlite_dir or base / f"engine-db-{index}"
        full += ["--sqlite-dir", str(sqlite_dir)]
        base_env.update(INNGEST_SIGNING_KEY=SIGNING_KEY, INNGEST_EVENT_KEY=EVENT_KEY)
    return EngineProc(mode, chosen, [*full, *args], {**base_env, **(env or {})}, base / f"engine-{index}", sqlite_dir)


@pytest.fixture
def engine_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., EngineProc]]:
    """Start engines for one test; see the module docstring."""
    procs: list[EngineProc] = []

    def make(mode: str = "dev", sqlite_dir: Path | None = None, args: tuple[str, ...] = (),
             env: dict[str, str] | None = None, start: bool = True, port: int | None = None) -> EngineProc:
        proc = _make_engine(tmp_path, len(procs), mode, sqlite_dir, args, env, port)
        procs.append(proc)
        return proc.start() if start else proc

    yield make
    failed = getattr(request.node, "rep_call", None)
    for p in procs:
        p.stop(5)
        if failed is not None and failed.failed:
            sys.stderr.write(f"--- engine {' '.join(p.args)} ---\n{p.output()}\n")


@pytest.fixture(scope="module", params=["dev", "production"])
def module_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProc]:
    """One engine per test module and mode (dev, production), shared by its tests."""
    proc = _make_engine(tmp_path_factory.mktemp("engine"), 0, str(request.param)).start()
    yield proc
    proc.stop(5)


def client_for(engine: EngineProc, app_id: str = "test-app") -> Any:
    import logging

    logger = logging.getLogger("sdk-under-test")
    if engine.mode == "production":
        return inngest.Inngest(app_id=app_id, is_production=True, signing_key=engine.signing_key,
                               event_key=engine.event_key, api_base_url=engine.url,
                               event_api_base_url=engine.url, logger=logger)
    return inngest.Inngest(app_id=app_id, is_production=False, api_base_url=engine.url,
                           event_api_base_url=engine.url, logger=logger)


@pytest.fixture(name="client_for", scope="session")
def client_for_fixture() -> Callable[..., Any]:
    return client_for


class SdkApp:
    """The official SDK served by uvicorn in a background thread on 127.0.0.1:0."""

    def __init__(self, client: Any, functions: list[Any]) -> None:
        import fastapi
        import inngest.fast_api
        import uvicorn

        app = fastapi.FastAPI()
        inngest.fast_api.serve(app, client, functions)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])),
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError("SDK app did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/inngest"

    def sync(self, engine: EngineProc) -> None:
        """PUT the serve URL, as the engine does: the SDK then POSTs /fn/register."""
        headers = {"X-Inngest-Server-Kind": "cloud" if engine.mode == "production" else "dev"}
        r = httpx.put(self.url, json={"url": self.url}, headers=headers, timeout=10)
        assert r.status_code == 200 and "error" not in r.json(), r.text

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def sdk_factory() -> Iterator[Callable[..., SdkApp]]:
    apps: list[SdkApp] = []

    def make(engine: EngineProc, client: Any, functions: list[Any], sync: bool = True) -> SdkApp:
        app = SdkApp(client, functions)
        apps.append(app)
        if sync:
            app.sync(engine)
        return app

    yield make
    for app in apps:
        app.stop()


@pytest.fixture(scope="session")
def serve_sdk() -> Callable[..., SdkApp]:
    """``serve_sdk(engine, client, functions)`` -> a synced ``SdkApp`` (the caller stops it).

    For module-scoped apps; per-test code should prefer ``sdk_factory``.
    """
    def make(engine: EngineProc, client: Any, functions: list[Any]) -> SdkApp:
        app = SdkApp(client, functions)
        app.sync(engine)
        return app

    return make


def send_event(engine: EngineProc, name: str, data: dict[str, Any] | None = None, **extra: Any) -> str:
    r = httpx.post(f"{engine.url}/e/{engine.key}", json={"name": name, "data": data or {}, **extra}, timeout=5)
    assert r.status_code == 200, r.text
    return str(r.json()["ids"][0])


def runs_for_event(engine: EngineProc, event_id: str, count: int = 1, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        r = engine.get(f"/v1/events/{event_id}/runs")
        if r.status_code == 200:
            seen = r.json()["data"]
            if len(seen) >= count:
                return [run["run_id"] for run in seen]
        time.sleep(0.02)
    raise AssertionError(f"expected {count} runs for event {event_id}, saw {seen}")


def wait_for_run_status(engine: EngineProc, run_id: str, status: str, timeout: float = 15) -> dict[str, Any]:
    """Poll GET /v1/runs/{id} until ``status``; fail early on another final status."""
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        try:
            r = engine.get(f"/v1/runs/{run_id}")
            seen = r.json() if r.status_code == 200 else r.text
        except httpx.HTTPError as exc:
            seen = exc
        if isinstance(seen, dict):
            run = seen["data"]
            if run["status"] == status:
                return dict(run)
            if run["status"] in ("Completed", "Failed", "Cancelled") and run["status"] != status:
                raise AssertionError(f"run {run_id} ended {run['status']}, expected {status}: {run}")
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} not {status} after {timeout} s; last seen: {seen}")


@pytest.fixture(name="send_event", scope="session")
def send_event_fixture() -> Callable[..., str]:
    return send_event


@pytest.fixture(name="runs_for_event", scope="session")
def runs_for_event_fixture() -> Callable[..., list[str]]:
    return runs_for_event


@pytest.fixture(name="wait_for_run_status", scope="session")
def wait_for_run_status_fixture() -> Callable[..., dict[str, Any]]:
    return wait_for_run_status


@pytest.fixture
def step_log(tmp_path: Path) -> Callable[..., Any]:
    """A file steps append their name to, to count executions across engine restarts."""
    path = tmp_path / f"steps-{secrets.token_hex(4)}.log"

    class StepLog:
        def __init__(self) -> None:
            self.path = path

        def add(self, name: str) -> None:
            with open(path, "a") as fh:
                fh.write(name + "\n")

        def lines(self) -> list[str]:
            return path.read_text().splitlines() if path.exists() else []

        def count(self, name: str) -> int:
            return self.lines().count(name)

    return StepLog  # type: ignore[return-value]



@pytest.fixture(scope="session")
def engine_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``engine_cli(*args, env=...)``: one ``agentcmd`` command run to completion (``run_engine_cli``)."""
    return run_engine_cli


def sdk_stack(prefix: str, build: Callable[[Any, dict[str, Any]], list[Any]]) -> Any:
    """A module-scoped ``stack`` fixture: ``(engine, state, app_id)`` once per mode (``module_engine``).

    An SDK app named ``<prefix>-<mode>`` serves ``build(client, state)``; ``state`` is what the
    functions record for the tests to read. In a test module: ``stack = sdk_stack("rp", _functions)``.
    """
    @pytest.fixture(scope="module", name="stack")
    def stack(module_engine: EngineProc, serve_sdk: Callable[..., SdkApp],
              client_for: Callable[..., Any]) -> Iterator[tuple[EngineProc, dict[str, Any], str]]:
        state: dict[str, Any] = {}
        app_id = f"{prefix}-{module_engine.mode}"
        client = client_for(module_engine, app_id=app_id)
        app = serve_sdk(module_engine, client, build(client, state))
        try:
            yield module_engine, state, app_id
        finally:
            app.stop()

    return stack
