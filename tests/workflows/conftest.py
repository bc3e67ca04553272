"""Fixtures for the workflow DSL, the app server and the workflow CLI.

The engine's part is played over real HTTP by ``Driver`` and ``FakeEngine``
(``tests/workflows/fakeengine.py``); ``project`` comes from the root conftest.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.harness.e2e import Procs, procs_fixture
from tests.harness.processes import free_port, read_jsonl
from tests.polling import wait_for
from tests.workflows.fakeengine import Driver, FakeEngine, ServerThread

# inngest 0.5.19 defines a pydantic model with a class-based Config; the deprecation warning fires once,
# at import, and is not ours to fix (pytest turns warnings into errors).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import inngest
    import inngest.fast_api  # noqa: F401


@dataclass
class AppServer:
    url: str
    app: FastAPI
    driver: Driver
    project: Path

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kw)


@pytest.fixture
def procs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Procs]:
    """Start real children (``tests/harness/e2e.py``); each is stopped by PID at teardown."""
    yield from procs_fixture(tmp_path, request)


@pytest.fixture
def write_workflow(project: Path) -> Callable[[str, str], Path]:
    """``write_workflow("name.py", source)`` puts a workflow file into the project."""

    def write(name: str, source: str) -> Path:
        path = project / ".agentcmd" / "workflows" / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


def git(cwd: Path, *args: str) -> str:
    """Run ``git ARGS`` in ``cwd``; its output, stripped (it must succeed)."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """A committer identity for the repositories a test makes (this machine may have none)."""
    for var, value in {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
                       "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}.items():
        monkeypatch.setenv(var, value)


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dev mode for the SDK (no signatures) and an engine URL nobody listens on."""
    monkeypatch.setenv("INNGEST_DEV", "1")
    monkeypatch.setenv("INNGEST_BASE_URL", f"http://127.0.0.1:{free_port()}")


@pytest.fixture
def app_server(project: Path, sdk_env: None) -> Iterator[Callable[..., AppServer]]:
    """Start the real app server (``create_app``) for ``project`` on an ephemeral port."""
    started: list[ServerThread] = []

    def start(project_dir: Path = project) -> AppServer:
        from agentcmd.server.app import create_app
        from agentcmd.workflows.context import set_runtime

        set_runtime(None)
        app = create_app(project_dir, entry_points=False)
        server = ServerThread(app).start()
        server.driver = Driver(server.url)
        started.append(server)
        return AppServer(server.url, app, server.driver, project_dir)

    yield start
    for server in started:
        if server.driver is not None:
            server.driver.http.close()
        server.stop()


FAKE_AGENT = r"""#!{python}
import json, os, sys, time
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\n")
if os.environ.get("FAKE_AGENT_SLEEP"):
    time.sleep(float(os.environ["FAKE_AGENT_SLEEP"]))
if os.environ.get("FAKE_AGENT_FAIL"):
    sys.stderr.write("fake agent failure\n")
    sys.exit(3)
# claude -p [options] -- PROMPT, or the prompt on stdin when no '--' follows
prompt = sys.argv[sys.argv.index("--") + 1] if "--" in sys.argv else sys.stdin.read()
session = sys.argv[sys.argv.index("--resume") + 1] if "--resume" in sys.argv else "sess-123"
print(json.dumps({{"type": "result", "result": "answer to: " + prompt, "session_id": session,
                  "is_error": False}}))
"""


@dataclass
class FakeAgent:
    path: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        return read_jsonl(self.log)


def make_fake_agent(directory: Path, name: str = "claude") -> FakeAgent:
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{name}-calls.jsonl"
    path = directory / name
    path.write_text(FAKE_AGENT.format(python=sys.executable, log=str(log)))
    path.chmod(path.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    return FakeAgent(path, log)


@pytest.fixture
def agent_factory() -> Callable[..., FakeAgent]:
    """``agent_factory(directory, name="claude")``: a fake agent CLI not on PATH."""
    return make_fake_agent


@pytest.fixture
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAgent:
    """A fake ``claude`` first on PATH that records each call (argv, cwd) to a file."""
    agent = make_fake_agent(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{agent.path.parent}{os.pathsep}{os.environ['PATH']}")
    return agent


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """``wait_until(predicate, timeout, what)``: poll a condition with a deadline (never a bare sleep)."""
    return wait_for


@dataclass
class Stack:
    """An app server wired to a fake engine."""

    app: AppServer
    engine: FakeEngine
    engine_url: str


@pytest.fixture
def stack(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Stack]]:
    """``stack()`` starts a FakeEngine and the real app server pointing at it (dev mode)."""
    servers: list[ServerThread] = []
    engines: list[FakeEngine] = []

    def start() -> Stack:
        from agentcmd.server.app import create_app
        from agentcmd.workflows.context import set_runtime

        engine = FakeEngine()
        engine_server = ServerThread(engine.app).start()
        servers.append(engine_server)
        engines.append(engine)
        monkeypatch.setenv("INNGEST_DEV", "1")
        monkeypatch.setenv("INNGEST_BASE_URL", engine_server.url)
        set_runtime(None)
        app = create_app(project, entry_points=False)
        app_server = ServerThread(app).start()
        servers.append(app_server)
        engine.app_url = app_server.url
        app_server.driver = Driver(app_server.url)
        return Stack(AppServer(app_server.url, app, app_server.driver, project), engine, engine_server.url)

    yield start
    for engine in engines:
        for run in engine.runs.values():
            if run["status"] == "Running":
                run["status"] = "Cancelled"
        engine.wait_idle(10)
    for server in reversed(servers):
        if server.driver is not None:
            server.driver.http.close()
        server.stop()
