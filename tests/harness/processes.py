"""Subprocesses and ports for tests: real ``python -m agentcmd`` children, stopped by PID.

``Child`` runs any argv with its output in a file; ``Spawned`` is the
``python -m agentcmd ARGS`` child of the ``spawn`` fixture; ``run_cli`` runs
one command to completion. ``clean_env(home)`` is this process's environment
without any ``INNGEST_*``/``AGENTCMD_*`` setting, with its own home.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago (all bound at once, then closed)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def port_with_the_next_one_taken() -> Iterator[int]:
    """A free port whose next one (the connect gateway's default) is held by a listening socket, or a skip."""
    import pytest

    port = free_port()
    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", port + 1))
        except OSError:
            pytest.skip("port + 1 is not free on this machine")
        taken.listen(1)
        yield port


def clean_env(home: Path) -> dict[str, str]:
    """The environment for a child that must see none of this machine's Inngest or agentcmd settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_")) and k != "NODE_ENV"}
    env["AGENTCMD_HOME"] = str(home)
    return env


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != b"Z"


class Child:
    """A subprocess with its output in a file, in a session of its own, stopped by PID."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None,
                 append: bool = False) -> None:
        self.log = log
        self._out = open(log, "ab" if append else "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True)

    def output(self) -> str:
        """Everything it printed so far (also after ``stop()``)."""
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then SIGKILL to its whole process group after ``timeout`` seconds; the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)   # its own session: the group is its own
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


class Spawned(Child):
    """A ``python -m agentcmd ARGS`` child whose output the ``spawn`` fixture prints if the test fails."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        super().__init__([sys.executable, "-m", "agentcmd", *args], env, log, cwd)
        self.env = env

    def stop(self, timeout: float = 10) -> int:
        return super().stop(timeout)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """What a fake program recorded, one JSON object a line (nothing yet if the file is not there)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agentcmd ARGS`` to completion; output is kept for assertions."""
    return subprocess.run([sys.executable, "-m", "agentcmd", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, cwd=cwd)


def run_engine_cli(*args: str, env: dict[str, str] | None = None,
                   timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``run_cli`` with no ``INNGEST_*`` variable inherited (bad-input checks of the engine)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    return subprocess.run([sys.executable, "-m", "agentcmd", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=timeout)
