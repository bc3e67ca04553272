"""Fixtures every test can use; what they are built from lives in ``tests/harness/`` (see tests/README.md).

Every test gets a private AGENTCMD_HOME and no Inngest settings from this
machine (``agentcmd_home``, autouse). ``project`` is a project directory
holding the workflows a folder names in ``project_workflows``. ``spawn``
starts ``python -m agentcmd`` children that are stopped at teardown (their
output printed if the test failed). The engine fixtures (``engine_factory``,
``module_engine``, ``sdk_factory`` ...) come from ``tests/harness/engine.py``, ``browser`` and
``page`` (a real Chromium) from ``tests/harness/browser.py``.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.harness.browser import browser, chromium_path, page  # noqa: F401
from tests.harness.bytecode import cache_bytecode
from tests.harness.engine import (  # noqa: F401  (pytest finds fixtures by name)
    client_for_fixture,
    engine_cli,
    engine_factory,
    module_engine,
    runs_for_event_fixture,
    sdk_factory,
    send_event_fixture,
    serve_sdk,
    step_log,
    wait_for_run_status_fixture,
)
from tests.harness.fakeagents import fake_agents  # noqa: F401
from tests.harness.parallel import auto_workers
from tests.harness.processes import Spawned, free_port, run_cli


def pytest_configure(config: pytest.Config) -> None:
    cache_bytecode(config)  # before xdist starts its workers: they and every child inherit it


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: how many workers -n auto starts
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    return auto_workers(list(config.args))


@pytest.fixture(autouse=True)
def agentcmd_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own AGENTCMD_HOME and a clean Inngest environment."""
    home = tmp_path / "agentcmd-home"
    monkeypatch.setenv("AGENTCMD_HOME", str(home))
    for var in list(os.environ):
        if (
            var.startswith("INNGEST_")
            or var in {"NODE_ENV", "PORT"}
            or (var.startswith("AGENTCMD_") and var != "AGENTCMD_HOME")
        ):
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def project_workflows() -> dict[str, str]:
    """File name -> source of the workflows ``project`` holds; a folder's conftest overrides it."""
    return {}


@pytest.fixture
def project(tmp_path: Path, project_workflows: dict[str, str]) -> Path:
    """A project directory with ``.agentcmd/workflows/`` holding ``project_workflows``."""
    root = tmp_path / "project"
    (root / ".agentcmd" / "workflows").mkdir(parents=True)
    for name, source in project_workflows.items():
        (root / ".agentcmd" / "workflows" / name).write_text(textwrap.dedent(source))
    return root


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def cli() -> object:
    return run_cli


@pytest.fixture
def spawn(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Spawned]]:
    """Start ``python -m agentcmd`` subprocesses; stops them and prints their logs on failure."""
    children: list[Spawned] = []

    def _spawn(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Spawned:
        child = Spawned(list(args), {**os.environ, **(env or {})}, tmp_path / f"spawn-{len(children)}.log", cwd)
        children.append(child)
        return child

    yield _spawn
    failed = getattr(request.node, "rep_call", None)
    for child in children:
        child.stop()
        if failed is not None and failed.failed:
            sys.stderr.write(f"--- output of agentcmd {' '.join(map(str, child.proc.args[3:]))} ---\n"
                             f"{child.output()}\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
