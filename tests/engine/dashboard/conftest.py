"""Fixtures for the dashboard: a real engine store on a SQLite file, seeded rows, a real HTTP server;
and, for the browser and workflow-view tests, a real ``agentcmd engine dev`` syncing a real app server.

The dashboard router is served by uvicorn on an ephemeral loopback port
(CONVENTIONS habit 21) over a real ``Store``; rows are written with SQL into
the engine's own tables, so the pages read exactly what an engine would
have stored (``Seeder``, tests/engine/dashboard/seeder.py).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from tests.engine.dashboard.seeder import Seeder
from tests.engine.dashboard.storecommands import StoreCommands
from tests.harness.processes import Child, clean_env, free_port
from tests.harness.servers import LiveServer
from tests.polling import wait_for

from agentcmd.engine.dashboard import DashboardConfig, create_router
from agentcmd.engine.dashboard.actions import EngineActions
from agentcmd.engine.dashboard.reads import DashboardReads
from agentcmd.engine.store import Store, open_store
from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth
from agentcmd.webauth.ratelimit import LoginLimiter

TOKEN = "dash-token-for-tests-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A production-style store: a WAL SQLite file in the test's tmp dir."""
    s = open_store(tmp_path / "engine.db")
    yield s
    s.close()


@pytest.fixture
def seed(store: Store) -> Seeder:
    return Seeder(store)


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
        app.include_router(create_router(DashboardReads(self.store), config,
                                         EngineActions(StoreCommands(self.store)) if actions else None))
        server = LiveServer(app, lifespan="off").start()  # as the engine serves it
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


