"""benchmarks/connect_bench.py runs end to end in a tiny configuration and leaves no process behind.

The real script as a subprocess (a real engine, the official SDK app under
uvicorn, an ``inngest.connect`` worker, Restate's server from npm and its
SDK's worker), with one round of a few runs: what matters is that every
system's numbers come out, the markdown tables print, and every child it
started is gone when it exits. Each run marks its environment with a unique
value so leftovers are found by that mark, not by a program name other
engineers' processes share.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "connect_bench.py"
MARK = "CONNECT_BENCH_TEST_MARK"

pytestmark = pytest.mark.slow


def processes_marked(mark: str) -> list[str]:
    """Command lines of live processes whose environment carries ``MARK=mark``."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def run_bench(tmp_path: Path, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess[str], str]:
    mark = uuid.uuid4().hex
    env = {**os.environ, MARK: mark, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "1", "--runs", "4", "--c1-runs", "2",
                           "--warmup", "1", "--inflight", "2", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=tmp_path)
    return done, mark


def engine_has_gateway() -> bool:
    """Whether this engine has a connect gateway (engine/connect/gateway.py); without one connect cannot run."""
    return importlib.util.find_spec("agentcmd.engine.connect.gateway") is not None


@pytest.mark.timeout(300)
def test_http_and_connect_end_to_end(tmp_path: Path) -> None:
    systems = "http,connect" if engine_has_gateway() else "http"
    done, mark = run_bench(tmp_path, "--modes", "dev,production", "--systems", systems, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)["rows"]
    expected = {f"{s}/{m}" for s in systems.split(",") for m in ("dev", "production")}
    assert set(rows) == expected
    for row in rows.values():
        assert row["runs_per_s"] > 0 and row["c1_ms"] > 0, row
        assert row["server_cpu_ms_per_call"] > 0 and row["app_cpu_ms_per_call"] > 0, row
    assert processes_marked(mark) == []


def test_markdown_tables_and_ratios(tmp_path: Path) -> None:
    if not engine_has_gateway():
        pytest.skip("this engine has no connect gateway yet (agentcmd.engine.connect.gateway): "
                    "the connect/http ratio needs it")
    done, mark = run_bench(tmp_path, "--modes", "dev", "--systems", "http,connect")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| http | dev |" in done.stdout and "| connect | dev |" in done.stdout
    assert "runs/s connect/http" in done.stdout and "load average" in done.stdout
    assert processes_marked(mark) == []


def restate_missing() -> str | None:
    if shutil.which("npm") is None:
        return "npm is not on PATH: the benchmark installs restate-server from npm"
    missing = [m for m in ("restate", "hypercorn") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: .venv/bin/pip install -e '.[bench]'"
    return None


@pytest.mark.timeout(600)
def test_restate_end_to_end(tmp_path: Path) -> None:
    reason = restate_missing()
    if reason:
        pytest.skip(reason)
    done, mark = run_bench(tmp_path, "--systems", "restate", "--restate-cache", str(tmp_path / "restate"),
                           timeout=540)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| restate | persistent |" in done.stdout
    assert processes_marked(mark) == []


def test_bad_arguments_are_a_clear_error(tmp_path: Path) -> None:
    done, _ = run_bench(tmp_path, "--systems", "http,kafka")
    assert done.returncode == 2
    assert "--systems" in done.stderr and "kafka" in done.stderr and "Traceback" not in done.stderr


def test_missing_npm_is_a_clear_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("restate") is None:
        pytest.skip("restate-sdk not installed (.venv/bin/pip install -e '.[bench]'): the SDK is checked first")
    env_path = tmp_path / "bin"
    env_path.mkdir()
    mark = uuid.uuid4().hex
    done = subprocess.run([sys.executable, str(SCRIPT), "--systems", "restate", "--restate-cache",
                           str(tmp_path / "restate")], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PATH": str(env_path), MARK: mark})
    assert done.returncode != 0
    assert "npm is not on PATH" in done.stderr and "Traceback" not in done.stderr
    assert processes_marked(mark) == []


@pytest.mark.timeout(300)
def test_ctrl_c_mid_run_stops_every_process(tmp_path: Path) -> None:
    """SIGINT in the middle of a round: exit 130 at once, nothing it started left running."""
    from tests.polling import wait_for

    mark = uuid.uuid4().hex
    err = tmp_path / "stderr.txt"
    with err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), "--rounds", "3", "--runs", "2000", "--c1-runs", "2",
                                 "--warmup", "1", "--modes", "dev", "--systems", "http"], stdout=subprocess.DEVNULL,
                                stderr=stderr, cwd=tmp_path, env={**os.environ, MARK: mark})
    try:
        wait_for(lambda: len(processes_marked(mark)) >= 3, timeout=120, what="the engine and the app running",
                 seen=lambda: err.read_text(errors="replace"))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130, err.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    wait_for(lambda: processes_marked(mark) == [], timeout=10, what="no process left", seen=lambda: str(
        processes_marked(mark)))
