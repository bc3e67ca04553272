"""Connect workers end to end: real engines, real ``agentcmd worker`` subprocesses, a real project.

The project's workflow ``record`` runs three steps (``one``, ``two``,
``three``); each step appends ``{"run", "step", "pid", "attempt"}`` to the
JSON-lines file named by the run's input ``log`` (so a test sees which worker
process ran which step, and how often), then waits while the file named by
``gate_<step>`` (if given) does not exist. ``slow`` runs one step that takes
``seconds`` of work: longer than an engine's ``--call-timeout`` in the tests
that need it. ``shell`` runs the input's ``command`` as a step command (its own
process group, as an agent CLI's).

``connect_engine(mode, args)`` is ``engine_factory`` with ``--connect-port`` on
a free port. ``workers(engine, name, ...)`` starts ``python -m agentcmd worker`` against an
engine of ``engine_factory``, with the engine's keys in production; each is
stopped by PID at teardown. ``ready_workers(engine, n)`` waits until the
engine's ``GET /v1/apps`` lists ``n`` ready workers of app ``agentcmd``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.harness.engine import EngineProc
from tests.harness.processes import free_port
from tests.workers.workerharness import Calls, WorkerProc, worker_argv, worker_env

RECORD = '''
import asyncio
import json
import os
from pathlib import Path

from agentcmd import define_workflow


def note(ctx, name):
    with open(ctx.input["log"], "a") as fh:
        fh.write(json.dumps({"run": ctx.run_id, "step": name, "pid": os.getpid(), "attempt": ctx.attempt}) + "\\n")


async def gate(ctx, name):
    path = ctx.input.get("gate_" + name)
    while path and not Path(path).exists():
        await asyncio.sleep(0.02)


@define_workflow(id="record", retries=2)
async def record(ctx, step):
    done = []
    for name in ("one", "two", "three"):
        async def body(name=name):
            note(ctx, name)
            await gate(ctx, name)
            return name
        done.append(await step.run(name, body))
    return done


@define_workflow(id="shell", retries=2)
async def shell(ctx, step):
    await step.cli("cmd", ["sh", "-c", ctx.input["command"]])
    return "ok"


@define_workflow(id="slow", retries=0)
async def slow(ctx, step):
    async def work():
        note(ctx, "work")
        await asyncio.sleep(float(ctx.input["seconds"]))   # the step's own work, longer than the call timeout
        return "done"
    return await step.run("work", work)
'''

@pytest.fixture
def project_workflows() -> dict[str, str]:
    return {"record.py": RECORD}


@pytest.fixture
def workers(tmp_path: Path, project: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., WorkerProc]]:
    started: list[WorkerProc] = []

    def start(engine: EngineProc, name: str, *extra: str, key: str | None = None,
              env: dict[str, str] | None = None) -> WorkerProc:
        home = tmp_path / f"home-{name}"
        child = WorkerProc(name, worker_argv(engine, project, name, *extra),
                           {**worker_env(engine, home, key=key), **(env or {})}, tmp_path / f"worker-{name}.log")
        started.append(child)
        return child

    yield start
    failed = getattr(request.node, "rep_call", None)
    for child in started:
        child.stop(5)
        if failed is not None and failed.failed:
            sys.stderr.write(f"--- worker {child.name} ---\n{child.output()}\n")


@pytest.fixture
def connect_engine(engine_factory: Callable[..., EngineProc]) -> Callable[..., EngineProc]:
    """``engine_factory`` with its gateway on a free port of its own (the default port + 1 may be anyone's)."""
    def make(mode: str = "dev", args: tuple[str, ...] = ()) -> EngineProc:
        return engine_factory(mode, args=("--connect-port", str(free_port()), *args))

    return make


@pytest.fixture
def calls(tmp_path: Path) -> Calls:
    return Calls(tmp_path / "calls.jsonl")
