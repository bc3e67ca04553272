"""Fixtures for the dashboard: a real engine store on a SQLite file, seeded rows, a real HTTP server;
and, for the browser and workflow-view tests, a real ``agentcmd engine dev`` syncing a real app server.

The dashboard router is served by uvicorn on an ephemeral loopback port
(CONVENTIONS habit 21) over a real ``Store``; rows are written with SQL into
the engine's own tables, so the pages read exactly what an engine would
have stored. ``Seeder`` hands out ULIDs with increasing times so "newest
first" is deterministic.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.conftest import free_port
from ulid import ULID

from agentcmd.engine.dashboard import DashboardConfig, create_router
from agentcmd.engine.dashboard.actions import EngineActions
from agentcmd.engine.dashboard.queries import SqliteDashboardReader
from agentcmd.engine.store import Store, open_store
from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth
from agentcmd.webauth.ratelimit import LoginLimiter

TOKEN = "dash-token-for-tests-0123456789"
BASE_MS = 1_790_000_000_000  # 2026-09-21


@dataclass
class Seeder:
    """Writes engine rows straight into the store's tables."""

    store: Store
    clock: int = BASE_MS

    def _tick(self, ms: int = 1000) -> int:
        self.clock += ms
        return self.clock

    def _ulid(self, at: int) -> str:
        return str(ULID.from_timestamp(at / 1000))

    def write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        return self.store.db.write_sync(fn)

    def app(self, app_id: str = "agentcmd", url: str = "http://127.0.0.1:9/api/workflows/inngest",
            error: str | None = None) -> str:
        at = self._tick()
        self.write(lambda c: c.execute("INSERT INTO apps (app_id, url, sdk, framework, error, synced_at) "
                                       "VALUES (?,?,?,?,?,?)", (app_id, url, "py:v0.5.19", "fastapi", error, at)))
        return app_id

    def function(self, slug: str = "agentcmd-build", app_id: str = "agentcmd", name: str = "build",
                 event: str = "app/build.requested") -> str:
        config = {"id": slug, "name": name, "triggers": [{"event": event}]}
        at = self._tick()
        self.write(lambda c: c.execute(
            "INSERT INTO functions (slug, uuid, app_id, name, url, config, updated_at) VALUES (?,?,?,?,?,?,?)",
            (slug, f"uuid-{slug}", app_id, name, "http://127.0.0.1:9/x", json.dumps(config), at)))
        return slug

    def event(self, name: str = "app/build.requested", data: dict[str, Any] | None = None,
              at: int | None = None) -> str:
        at = at if at is not None else self._tick()
        eid = self._ulid(at)
        body = {"name": name, "data": data or {}, "id": eid, "ts": at, "user": {}}
        self.write(lambda c: c.execute("INSERT INTO events (internal_id, name, body, user_id, ts, received_at) "
                                       "VALUES (?,?,?,?,?,?)", (eid, name, json.dumps(body), None, at, at)))
        return eid

    def run(self, slug: str = "agentcmd-build", event_id: str | None = None, status: str = "Completed",
            output: Any = None, error: str | None = None, duration_ms: int = 4200, at: int | None = None,
            app_id: str = "agentcmd") -> str:
        at = at if at is not None else self._tick()
        event_id = event_id or self.event(at=at)
        run_id = self._ulid(at)
        events = self.write(lambda c: c.execute("SELECT body FROM events WHERE internal_id=?",
                                                (event_id,)).fetchone())
        ended = at + duration_ms if status in ("Completed", "Failed", "Cancelled") else None
        self.write(lambda c: c.execute(
            "INSERT INTO runs (run_id, function_slug, app_id, event_id, first_event, events, status, output, error, "
            "max_attempts, attempt, created_at, started_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, slug, app_id, event_id, events[0] if events else "{}", f"[{events[0]}]" if events else "[]",
             status,
             None if output is None else json.dumps(output), error, 4, 0, at, at, ended)))
        return run_id

    def step(self, run_id: str, name: str, memo: Any, status: str = "completed", op: str = "StepRun",
             started: int | None = None, duration_ms: int = 1500, attempt: int = 0) -> str:
        started = started if started is not None else self._tick(10)
        step_id = f"hash-{name}"
        self.write(lambda c: c.execute(
            "INSERT INTO steps (run_id, step_id, seq, name, op, memo, status, attempt, started_at, ended_at) "
            "VALUES (?, ?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM steps WHERE run_id=?), ?,?,?,?,?,?,?)",
            (run_id, step_id, run_id, name, op, json.dumps(memo), status, attempt, started, started + duration_ms)))
        return step_id

    def sleep(self, run_id: str, step_id: str, until: int) -> None:
        self.write(lambda c: c.execute("INSERT INTO queue (kind, run_id, step_id, ready_at) VALUES ('sleep',?,?,?)",
                                       (run_id, step_id, until)))

    def in_flight(self, run_id: str, since: int) -> None:
        self.write(lambda c: c.execute("INSERT INTO queue (kind, run_id, step_id, ready_at, lease_until) "
                                       "VALUES ('step',?,'step',?,?)", (run_id, since, since + 60_000)))

    def wait(self, run_id: str, step_id: str, event_name: str, expires_at: int, expression: str | None = None
             ) -> None:
        self.write(lambda c: c.execute(
            "INSERT INTO pauses (kind, run_id, step_id, event_name, expression, after_event, expires_at) "
            "VALUES ('wait',?,?,?,?,?,?)", (run_id, step_id, event_name, expression, "0", expires_at)))

    def history(self, run_id: str, type_: str, detail: str | None = None, step_id: str | None = None) -> None:
        at = self._tick(5)
        self.write(lambda c: c.execute("INSERT INTO history (run_id, at, type, step_id, attempt, detail) "
                                       "VALUES (?,?,?,?,?,?)", (run_id, at, type_, step_id, 0, detail)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A production-style store: a WAL SQLite file in the test's tmp dir."""
    s = open_store(tmp_path / "engine.db")
    yield s
    s.close()


@pytest.fixture
def seed(store: Store) -> Seeder:
    return Seeder(store)


class LiveServer:
    """A uvicorn server in a thread on 127.0.0.1:<ephemeral>."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                                                    proxy_headers=False))  # as the engine
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout: float = 10) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the test server on {self.url} did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class DashboardFactory:
    store: Store
    servers: list[LiveServer] = field(default_factory=list)

    def __call__(self, mode: str = "dev", host: str = "127.0.0.1", dashboard_auth: bool = False,
                 token: str | None = TOKEN, actions: bool = True, limiter: LoginLimiter | None = None) -> str:
        """Serve a dashboard as an engine bound to ``host`` would; returns its base URL."""
        auth = WebAuth.build(Mode(mode), host, dashboard_auth, token, limiter=limiter)
        config = DashboardConfig(Mode(mode), auth, db_description=self.store.describe())
        app = FastAPI()
        app.include_router(create_router(SqliteDashboardReader(self.store), config,
                                         EngineActions(self.store) if actions else None))
        server = LiveServer(app).start()
        self.servers.append(server)
        return server.url


@pytest.fixture
def dashboard(store: Store) -> Iterator[DashboardFactory]:
    factory = DashboardFactory(store)
    yield factory
    for server in factory.servers:
        server.stop()


# -- a real engine and app server (session-wide: the browser and workflow-view tests share it) --------

WORKFLOW = '''
from agentcmd import define_workflow

@define_workflow(id="slow", name="Slow build", phases=["prepare", "build"], retries=0,
                 description="Waits for a gate file, so a test can watch it run")
async def slow(ctx, step):
    gate = ctx.input["gate"]
    with step.phase("prepare"):
        await step.cli("fetch", "echo fetched sources; echo 3 files")
    with step.phase("build"):
        await step.cli("compile", f"while [ ! -f {gate} ]; do sleep 0.05; done; echo compiled")
        await step.artifact("report.txt", "build report: all green")
    return {"ok": True}
'''


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, seen: Callable[[], str] = lambda: "",
             children: tuple[Child, ...] = ()) -> Any:
    """Poll ``predicate`` until truthy; fail at the deadline, or at once if one of ``children`` exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        for child in children:
            if child.proc.poll() is not None:
                raise AssertionError(f"{' '.join(map(str, child.proc.args[1:4]))} exited with {child.proc.returncode} "
                                     f"while waiting for {what}:\n{child.output()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; seen: {seen()[-3000:]}")


class Child:
    """A subprocess with its output in a file, stopped by PID."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


@dataclass
class Stack:
    engine: str
    app: str
    tmp: Path
    children: list[Child]

    def logs(self) -> str:
        return "\n".join(f"--- {' '.join(c.proc.args[1:4])}\n{c.output()[-2500:]}" for c in self.children)

    def start_run(self, gate: Path) -> str:
        body = httpx.post(f"{self.app}/api/workflows/slow/runs", json={"input": {"gate": str(gate)}}, timeout=30)
        assert body.status_code == 202, body.text
        run_id = body.json()["data"]["run_id"]
        assert run_id, body.text
        return str(run_id)


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_")) and k != "NODE_ENV"}
    env["AGENTCMD_HOME"] = str(home)
    return env




@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``agentcmd engine dev`` syncing ``python -m agentcmd.server`` with the ``slow`` workflow."""
    tmp = tmp_path_factory.mktemp("stack")
    project = tmp / "project"
    (project / ".agentcmd" / "workflows").mkdir(parents=True)
    (project / ".agentcmd" / "workflows" / "slow.py").write_text(textwrap.dedent(WORKFLOW))
    engine_port, app_port = free_port(), free_port()
    engine, app = f"http://127.0.0.1:{engine_port}", f"http://127.0.0.1:{app_port}"
    base = clean_env(tmp / "home")
    children = [
        Child([sys.executable, "-m", "agentcmd.server", "--port", str(app_port), "--project", str(project),
               "--log-level", "warning"], inngest_env(Mode.DEV, engine, base=base), tmp / "app.log"),
        Child([sys.executable, "-m", "agentcmd", "engine", "dev", "--port", str(engine_port), "--no-discovery",
               "--poll-interval", "0.5", "-u", f"{app}/api/workflows/inngest"], base, tmp / "engine.log"),
    ]
    s = Stack(engine, app, tmp, children)
    try:
        wait_for(lambda: httpx.get(f"{engine}/v1/functions", timeout=5).json().get("data"), 60,
                 "the engine to sync the app", s.logs, tuple(children))
        yield s
    finally:
        for child in children:
            child.stop()


