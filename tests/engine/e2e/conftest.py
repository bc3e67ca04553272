"""End-to-end fixtures: the engine only as ``python -m agentcmd`` subprocesses.

Everything here runs real processes on ephemeral loopback ports, real SQLite
files and the official SDK (fixtures in ``tests/engine/conftest.py``).
``engine_cli(*args, env=...)`` runs one ``agentcmd`` command to completion
with a clean Inngest environment, for bad-input checks. The slowest modules
(crash + restart, sync polling) are marked ``slow``: deselect them locally
with ``-m "not slow"``; CI runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest


def run_engine_cli(*args: str, env: dict[str, str] | None = None,
                   timeout: float = 30) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    return subprocess.run([sys.executable, "-m", "agentcmd", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=timeout)


@pytest.fixture(scope="session")
def engine_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_engine_cli
