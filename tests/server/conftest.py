"""Fixtures for the app server's auth: a real dev engine, app servers under real uvicorn, helpers.

``app_server(mode, host, dashboard_auth)`` serves ``create_app`` as
``python -m agentcmd.server --host HOST`` would build it, with the SDK
environment of ``mode``. The policy is decided on the BIND address, so a
server for a production ``0.0.0.0`` config really listens on 0.0.0.0
(ephemeral port) and the test connects through 127.0.0.1: a loopback client
of a wildcard bind is still refused. A dev "beyond loopback" server is given
the host 0.0.0.0 for its policy but listens on loopback only (dev has no
auth; nothing else on this machine should reach it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

# inngest 0.5.19 defines a pydantic model with a class-based Config; the deprecation warning fires once,
# at import, and is not ours to fix (pytest turns warnings into errors).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import inngest.fast_api  # noqa: F401

from tests.polling import wait_for

from agentcmd.config.keys import hash_signing_key
from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode
from agentcmd.server.access import AppAuth

TOKEN = "app-views-dashboard-token-for-tests"
SIGNING_KEY = "signkey-prod-df95a4e9e0de15573029d2c63a3af1655d7af9b9b1b8b50ceb04cafee2f6d982"
EVENT_KEY = "bf9d36ad3886b8700f4d4fdf47879d1c3250e4f195bc6dad92875fc357da7a98"

WORKFLOW = '''
from agentcmd import define_workflow

@define_workflow(id="build", name="Build", phases=["compile"], retries=0,
                 args_schema={"type": "object", "properties": {"who": {"type": "string", "minLength": 1}},
                              "required": ["who"], "additionalProperties": False})
async def build(ctx, step):
    with step.phase("compile"):
        await step.cli("say", f"echo hello {ctx.input['who']}")
    return {"ok": True}
'''


class Child:
    """A subprocess with its output in a file, stopped by PID."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_")) and k != "NODE_ENV"}
    env["AGENTCMD_HOME"] = str(home)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def engine_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``agentcmd engine dev`` the app servers read runs from (it syncs no app: nothing runs)."""
    tmp = tmp_path_factory.mktemp("engine")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = Child([sys.executable, "-m", "agentcmd", "engine", "dev", "--port", str(port), "--no-discovery"],
                  clean_env(tmp / "home"), tmp / "engine.log")
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 30, "the dev engine",
                 child.output)
        yield url
    finally:
        child.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".agentcmd" / "workflows").mkdir(parents=True)
    (root / ".agentcmd" / "workflows" / "build.py").write_text(WORKFLOW)
    return root


class LiveServer:
    """uvicorn in a thread on ``bind``:<ephemeral>; ``url`` always goes through 127.0.0.1."""

    def __init__(self, app: Any, bind: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((bind, 0))
        self.bind = bind
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False,
                                                    proxy_headers=False))  # as the real launcher
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout: float = 10) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the app server on {self.url} did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class Served:
    url: str
    auth: AppAuth
    bind: str


@dataclass
class AppServerFactory:
    project: Path
    engine_url: str
    monkeypatch: pytest.MonkeyPatch
    servers: list[LiveServer] = field(default_factory=list)

    def __call__(self, mode: str = "dev", host: str = "127.0.0.1", dashboard_auth: bool = False) -> Served:
        from agentcmd.server.app import create_app

        production = mode == "production"
        env = inngest_env(Mode(mode), self.engine_url, event_key=EVENT_KEY if production else None,
                          signing_key=SIGNING_KEY if production else None, base={})
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        auth = AppAuth.build(mode, host, dashboard_auth=dashboard_auth, token=TOKEN, signing_key=SIGNING_KEY)
        app = create_app(self.project, entry_points=False, host=host, auth=auth)
        bind = host if production and host == "0.0.0.0" else "127.0.0.1"
        server = LiveServer(app, bind).start()
        self.servers.append(server)
        return Served(server.url, auth, bind)


@pytest.fixture
def app_server(project: Path, engine_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppServerFactory]:
    factory = AppServerFactory(project, engine_url, monkeypatch)
    yield factory
    for server in factory.servers:
        server.stop()


def bearer(raw: bool = False) -> dict[str, str]:
    """The API's credentials: the signing key as the SDK hashes it (what the CLI sends), or raw."""
    return {"Authorization": f"Bearer {SIGNING_KEY if raw else hash_signing_key(SIGNING_KEY)}"}
