"""What the end-to-end workflow tests share: real supervisors, engines and app servers, stopped by PID.

The ``procs`` fixture (tests/workflows/conftest.py) starts ``Proc`` children
and stops them at teardown. ``dev_pair`` starts an app server and a dev
engine that syncs it; ``supervisor`` lays out ``agentcmd start`` / ``dev``
for a project on two fresh ports. ``synced``, ``stopped``, ``cli`` and
``alive`` are the conditions and commands the tests poll and run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import pytest
from tests.harness.processes import Child, free_ports
from tests.polling import wait_for

from agentcmd.config.keys import generate_event_key, generate_signing_key
from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

CANCELLABLE = '''
from agentcmd import define_workflow

@define_workflow(id="cancellable", phases=["work"], retries=0, cancel_on=["agentcmd/cancellable.stop"])
async def cancellable(ctx, step):
    with step.phase("work"):
        await step.cli("quick", "true")
        await step.cli("long", f"sleep 60 & echo $! > {ctx.run_id}.pid; wait")
        await step.cli("never", f"touch {ctx.run_id}.never")


@define_workflow(id="failing", retries=0)
async def failing(ctx, step):
    await step.cli("boom", "echo broken >&2; exit 7")
'''


class Proc(Child):
    """A child in its own session, its output appended to a file; stopped by PID at teardown."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        super().__init__(argv, env, log, cwd, append=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        self.proc.wait(15)

    def stop(self, timeout: float = 15) -> int:
        return super().stop(timeout)


Procs = Callable[..., Proc]


def procs_fixture(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Procs]:
    """The body of the ``procs`` fixture: start children; stop them all after, printing their output on failure."""
    started: list[Proc] = []

    def start(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        proc = Proc(argv, env, tmp_path / f"proc-{len(started)}.log", cwd)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        for proc in started:
            sys.stderr.write(f"--- {' '.join(map(str, proc.proc.args))}\n{proc.output()[-4000:]}\n")


def synced(engine_url: str, key: str | None, app_url: str | None = None) -> bool:
    """The engine knows the app's functions (and the app answers, when ``app_url`` is given)."""
    if app_url is not None and httpx.get(f"{app_url}/health", timeout=5).status_code != 200:
        return False
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    resp = httpx.get(f"{engine_url}/v1/functions", headers=headers, timeout=5)
    return resp.status_code == 200 and bool(resp.json().get("data"))


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def stopped(sup: Proc, *ports: int) -> None:
    """Stop a supervisor and wait until its children let go of their ports (a restart reuses them)."""
    sup.stop()
    wait_for(lambda: all(port_free(p) for p in ports), 30, f"ports {ports} to be free", sup.output)


def cli(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentcmd", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (one not yet reaped counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def without_inngest() -> dict[str, str]:
    """This process's environment less any ``INNGEST_*`` setting (a developer's keys must not leak in)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}


@dataclass
class DevPair:
    """An app server and a dev engine started as two children, the engine synced to the app."""

    app_url: str
    engine_url: str
    app: Proc
    engine: Proc
    base: dict[str, str]   # the environment both got (no INNGEST_*)
    app_argv: list[str]
    app_env: dict[str, str]

    def start_app(self, procs: Procs) -> Proc:
        """Start the app server again (after a test stopped it)."""
        self.app = procs(self.app_argv, self.app_env)
        return self.app


def dev_pair(procs: Procs, project: Path, *engine_args: str) -> DevPair:
    """Start ``agentcmd.server`` and ``agentcmd engine dev -u <its SDK URL>`` (plus ``engine_args``); wait for sync."""
    app_port, engine_port = free_ports(2)
    app_url, engine_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{engine_port}"
    base = without_inngest()
    app_argv = [sys.executable, "-m", "agentcmd.server", "--port", str(app_port), "--project", str(project)]
    app_env = inngest_env(Mode.DEV, engine_url, base=base)
    app = procs(app_argv, app_env)
    engine = procs([sys.executable, "-m", "agentcmd", "engine", "dev", "--host", "127.0.0.1", "--port",
                    str(engine_port), "--no-discovery", "--poll-interval", "0.2", *engine_args, "-u",
                    f"{app_url}/api/workflows/inngest"], base)
    wait_for(lambda: synced(engine_url, None, app_url), 60, "the engine to sync the app", engine.output)
    return DevPair(app_url, engine_url, app, engine, base, app_argv, app_env)


@dataclass
class Supervisor:
    """How to run ``agentcmd start`` (production, with fresh keys) or ``agentcmd dev`` for a project."""

    argv: list[str]
    env: dict[str, str]
    app_port: int
    engine_port: int
    signing: str | None
    app_url: str = field(init=False)
    engine_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.app_url = f"http://127.0.0.1:{self.app_port}"
        self.engine_url = f"http://127.0.0.1:{self.engine_port}"

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signing}"} if self.signing else {}

    def start(self, procs: Procs, what: str = "the engine to sync the app") -> Proc:
        """Start it and wait until its engine has synced its app server."""
        sup = procs(self.argv, self.env)
        wait_for(lambda: synced(self.engine_url, self.signing, self.app_url), 60, what, sup.output)
        return sup

    def stop(self, sup: Proc) -> None:
        stopped(sup, self.app_port, self.engine_port)


def supervisor(project: Path, command: Literal["start", "dev"] = "start",
               ports: tuple[int, int] | None = None) -> Supervisor:
    """``agentcmd start`` with a fresh signing and event key (or ``agentcmd dev``, keyless) on two free ports
    (or on ``ports``: app server, engine)."""
    app_port, engine_port = ports or free_ports(2)
    env = without_inngest() | {"PORT": str(app_port)}
    signing = None
    if command == "start":
        signing = generate_signing_key()
        env |= {"INNGEST_SIGNING_KEY": signing, "INNGEST_EVENT_KEY": generate_event_key()}
    argv = [sys.executable, "-m", "agentcmd", command, "--port", str(app_port), "--engine-port",
            str(engine_port), "--project", str(project)]
    return Supervisor(argv, env, app_port, engine_port, signing)
