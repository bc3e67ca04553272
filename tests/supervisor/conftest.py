"""Fixtures for the supervisor: a fake ``inngest`` on PATH, and process checks.

The Go ``inngest`` binary cannot run here, so ``fake_inngest`` installs
``fake_inngest.py`` as an ``inngest`` executable in a temporary bin
directory. Everything else is real: ``python -m agentcmd dev|start``
subprocesses, the real app server, real ports, real signals.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.harness.processes import Spawned, free_ports, pid_alive, read_jsonl
from tests.polling import wait_for

FAKE_SCRIPT = Path(__file__).with_name("fake_inngest.py")


@dataclass
class FakeInngest:
    bin_dir: Path
    record: Path
    script: Path

    def records(self) -> list[dict[str, Any]]:
        return read_jsonl(self.record)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for the supervisor: the fake first on PATH, its record file."""
        return {"PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                "FAKE_INNGEST_RECORD": str(self.record), **extra}

    @property
    def engine_command(self) -> str:
        """A value for AGENTCMD_ENGINE_COMMAND: the fake standing in for the embedded engine."""
        return f"{sys.executable} {self.script}"


def install_executable(bin_dir: Path, name: str, script: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f"#!{sys.executable}\n" + script.read_text())
    exe.chmod(0o755)
    return exe


@pytest.fixture
def fake_inngest(tmp_path: Path) -> FakeInngest:
    bin_dir = tmp_path / "fakebin"
    install_executable(bin_dir, "inngest", FAKE_SCRIPT)
    return FakeInngest(bin_dir, tmp_path / "inngest-calls.jsonl", FAKE_SCRIPT)


HELLO_WORKFLOW = """
from agentcmd import define_workflow


@define_workflow(id="hello", retries=0)
async def hello(ctx, step):
    return "hi"
"""


@pytest.fixture
def project_workflows() -> dict[str, str]:
    """The ``project`` holds one workflow, so the app has something to sync."""
    return {"hello.py": HELLO_WORKFLOW}


@pytest.fixture
def ports() -> tuple[int, int]:
    """(app port, engine port): two distinct ephemeral ports."""
    app, engine = free_ports(2)
    return app, engine


def wait_output(child: Spawned, text: str, timeout: float = 20) -> str:
    """Wait until the supervisor printed ``text`` (or died trying)."""
    def check() -> bool:
        out = child.output()
        if text in out:
            return True
        if child.proc.poll() is not None:
            pytest.fail(f"supervisor exited with {child.proc.returncode} before printing {text!r}:\n{out}")
        return False

    wait_for(check, timeout, repr(text), child.output)
    return child.output()


def wait_exit(child: Spawned, timeout: float = 20) -> int:
    wait_for(lambda: child.proc.poll() is not None, timeout, "the supervisor to exit", child.output)
    return int(child.proc.returncode)


def child_pids(output: str) -> dict[str, int]:
    """The pids the supervisor announced: ``engine started (pid 123): ...``."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+) started \(pid (\d+)\)", output, re.M)}


def assert_all_gone(pids: list[int], timeout: float = 8, output: Callable[[], str] | None = None) -> None:
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout,
             f"processes {pids} to exit (alive: {[p for p in pids if pid_alive(p)]})", output)


@pytest.fixture
def kill_leftovers() -> Any:
    """Pids a test registers are SIGKILLed at teardown if a bug left them running."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
