"""``run --wait`` and ``runs watch`` on the real thing: ``agentcmd dev`` (engine and app server), real steps.

The app server keeps each step's output in the run's stream and serves it
live (``GET /api/runs/{id}/live``); the CLI prints it as it comes, and a
later ``runs watch`` of the finished run prints what was kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.processes import free_ports, run_cli
from tests.polling import wait_for

pytestmark = pytest.mark.slow

TALK = '''
from agentcmd import define_workflow

@define_workflow(id="talk", name="Talk", phases=["plan"], retries=0)
async def talk(ctx, step):
    with step.phase("plan"):
        await step.cli("count", "for i in 1 2 3; do echo line $i; sleep 0.1; done; echo oops >&2")
    return {"ok": True}

@define_workflow(id="review", phases=["plan"], retries=0)
async def review(ctx, step):
    with step.phase("plan"):
        a = await step.agent("review", prompt="review the diff")
    return {"agent": a.text}

@define_workflow(id="breaks", retries=0)
async def breaks(ctx, step):
    await step.cli("boom", "echo about to fail; exit 7")
'''


@pytest.fixture
def project_workflows() -> dict[str, str]:
    return {"talk.py": TALK}


def _dev(spawn: Callable[..., Any], project: Path) -> dict[str, str]:
    """``agentcmd dev`` for ``project``, synced; the env a CLI call needs to reach its app server."""
    app_port, engine_port = free_ports(2)
    child = spawn("dev", "--port", str(app_port), "--engine-port", str(engine_port), "--project", str(project))

    def synced() -> bool:
        if httpx.get(f"http://127.0.0.1:{app_port}/health", timeout=5).status_code != 200:
            return False
        resp = httpx.get(f"http://127.0.0.1:{engine_port}/v1/functions", timeout=5)
        return resp.status_code == 200 and len(resp.json().get("data") or []) >= 3

    wait_for(synced, 60, "agentcmd dev to serve and sync the workflows", child.output, children=[child])
    return {"PORT": str(app_port)}


def _lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_run_wait_prints_each_output_line_and_watch_prints_them_again(spawn: Any, project: Path) -> None:
    env = _dev(spawn, project)
    out = run_cli("workflows", "run", "talk", "--wait", "--timeout", "60", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '{\n  "ok": true\n}'
    assert "has no live stream" not in out.stderr
    printed = _lines(out.stderr, "output  ")
    assert printed == ["output  plan/count  stdout  line 1", "output  plan/count  stdout  line 2",
                       "output  plan/count  stdout  line 3", "output  plan/count  stderr  oops"]
    steps = _lines(out.stderr, "step ")
    assert steps[0] == "step started   plan/count  phase=plan" and steps[-1].startswith("step completed plan/count")

    run_id = out.stderr.splitlines()[0].split()[1]
    watched = run_cli("runs", "watch", run_id, env=env)
    assert watched.returncode == 0, watched.stderr
    assert _lines(watched.stdout, "output  ") == printed
    assert watched.stdout.rstrip().endswith(f"run {run_id} completed")


def test_a_failed_run_exits_1_after_its_output(spawn: Any, project: Path) -> None:
    env = _dev(spawn, project)
    out = run_cli("workflows", "run", "breaks", "--wait", "--timeout", "60", env=env)
    assert out.returncode == 1
    assert "output  boom  stdout  about to fail" in out.stderr
    assert "step failed    boom" in out.stderr and "exited with code 7" in out.stderr
    run_id = out.stderr.splitlines()[0].split()[1]
    watched = run_cli("runs", "watch", run_id, "--json", env=env)
    assert watched.returncode == 1 and f"error: run {run_id} failed" in watched.stderr


AGENT_LINES = [
    "agent  plan/review  session  ",
    "agent  plan/review  text  I'll look at the failing test first.",
    "agent  plan/review  tool  Bash: ",   # then the command as the parser summarises it
    "agent  plan/review  tool-result ok  Bash",
    "agent  plan/review  text  The assertion compares against the old value; fixing it.",
    "agent  plan/review  tool  Edit: ",
    "agent  plan/review  tool-result ok  Edit",
]


def _matches(lines: list[str], expected: list[str]) -> bool:
    return len(lines) >= len(expected) and all(line.startswith(want)
                                               for line, want in zip(lines, expected, strict=False))


def test_watch_prints_an_agents_messages_and_tool_calls_while_it_runs(
        spawn: Any, project: Path, fake_agents: Any, tmp_path: Path) -> None:
    fake_agents.hold()  # the fake claude streams its steps, then waits before its result
    env = _dev(spawn, project)
    started = run_cli("workflows", "run", "review", env=env)
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.split()[2]
    out_path = tmp_path / "watch.out"
    with open(out_path, "w") as out, open(tmp_path / "watch.err", "w") as err:
        watcher = subprocess.Popen([sys.executable, "-m", "agentcmd", "runs", "watch", run_id], stdout=out,
                                   stderr=err, env={**os.environ, **env})
    try:
        wait_for(lambda: _matches(_lines(out_path.read_text(), "agent  "), AGENT_LINES), 60,
                 "the agent's messages and tool calls", out_path.read_text)
        status = httpx.get(f"http://127.0.0.1:{env['PORT']}/api/runs/{run_id}", timeout=10).json()["data"]
        assert status["status"] == "Running" and watcher.poll() is None  # shown while the step still runs
        fake_agents.release()
        assert watcher.wait(60) == 0, (tmp_path / "watch.err").read_text()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait(10)
    text = out_path.read_text()
    agent = _lines(text, "agent  ")
    assert _matches(agent, AGENT_LINES) and "Bash: pytest -q tests/test_x.py" in agent[2]
    assert agent[-1].startswith("agent  plan/review  result ok  tokens in=1200 out=300 cached=800 cost=$0.0123")
    assert "step completed plan/review" in text and text.rstrip().endswith(f"run {run_id} completed")


def test_run_wait_off_a_terminal_prints_the_agent_lines(spawn: Any, project: Path, fake_agents: Any) -> None:
    env = _dev(spawn, project)
    out = run_cli("workflows", "run", "review", "--wait", "--timeout", "60", env=env)
    assert out.returncode == 0, out.stderr
    agent = _lines(out.stderr, "agent  ")
    assert _matches(agent, AGENT_LINES) and "result ok  tokens in=1200" in agent[-1]
    assert out.stderr.index("step started   plan/review") < out.stderr.index(agent[0])
