"""Shared fixtures: a private AGENTCMD_HOME, free ports, and the CLI as a real subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agentcmd ARGS`` to completion; output is kept for assertions."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "agentcmd", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )


@pytest.fixture
def cli() -> object:
    return run_cli


class Spawned:
    """A ``python -m agentcmd`` child whose output is dumped if the test fails."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        self.log_path = log
        self.env = env
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentcmd", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def spawn(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """Start ``python -m agentcmd`` subprocesses; stops them and prints their logs on failure."""
    children: list[Spawned] = []

    def _spawn(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Spawned:
        log = tmp_path / f"spawn-{len(children)}.log"
        child = Spawned(list(args), {**os.environ, **(env or {})}, log, cwd)
        children.append(child)
        return child

    yield _spawn
    failed = getattr(request.node, "rep_call", None)
    for child in children:
        child.stop()
        if failed is not None and failed.failed:
            sys.stderr.write(f"--- output of agentcmd {' '.join(child.proc.args[3:])} ---\n{child.output()}\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
