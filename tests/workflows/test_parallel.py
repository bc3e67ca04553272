"""``step.parallel``: several steps of one run at once, under a real ``agentcmd start``.

Real supervisor, embedded engine, app server and SDK; the branches are
``step.cli`` commands (and fake agents, once ``tests/fakes`` is there). Each
branch waits until the other has started, so run one after the other they
would never finish (their ``timeout=`` fails the run): completing proves they
ran at the same time. Cancelling the run stops both branches' process groups.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.fakeagents import FakeAgents
from tests.harness.keys import app_headers
from tests.harness.processes import Spawned, free_ports, pid_alive
from tests.polling import wait_for

from agentcmd.workflows import streamlog

SpawnFn = Callable[..., Spawned]

PAIR = '''
from agentcmd import define_workflow

WAIT_FOR = "touch {me}.started; while [ ! -f {other}.started ]; do sleep 0.05; done; echo {me} $$"


@define_workflow(id="pair", phases=["review"], retries=0)
async def pair(ctx, step):
    with step.phase("review"):
        left, right = await step.parallel(
            lambda: step.cli("left", WAIT_FOR.format(me=ctx.run_id + ".left", other=ctx.run_id + ".right"),
                             timeout=30),
            step.cli("right", WAIT_FOR.format(me=ctx.run_id + ".right", other=ctx.run_id + ".left"),
                     timeout=30),
        )
    after = await step.cli("after", "echo after")
    return {"left": left.stdout.split()[0], "right": right.stdout.split()[0],
            "pids": [int(left.stdout.split()[1]), int(right.stdout.split()[1])],
            "phases": [left.phase, right.phase], "after": after.stdout.strip()}


@define_workflow(id="pair-long", retries=0)
async def pair_long(ctx, step):
    await step.parallel(
        lambda: step.cli("one", f"sleep 60 & echo $$ $! > {ctx.run_id}.one.pids; wait"),
        lambda: step.cli("two", f"sleep 60 & echo $$ $! > {ctx.run_id}.two.pids; wait"),
    )
    await step.cli("never", f"touch {ctx.run_id}.never")


@define_workflow(id="pair-fail", retries=0)
async def pair_fail(ctx, step):
    ok, bad = await step.parallel(lambda: step.cli("ok", "echo fine"),
                                  lambda: step.cli("bad", "echo broken >&2; exit 3"),
                                  return_exceptions=ctx.input.get("gather", False))
    return {"ok": ok.stdout.strip(), "bad": type(bad).__name__, "message": str(bad)}
'''

RACE = '''
from agentcmd import define_workflow


@define_workflow(id="race", retries=0)
async def race(ctx, step):
    done = f"{ctx.run_id}.a2.done"

    async def a():
        await step.cli("a1", "true")
        return await step.cli("a2", f"touch {done}; echo a2")

    async def b():
        # Ends only once a2 ran: with mode="wait", a2 would wait for b1 to end first.
        return await step.cli("b1", f"while [ ! -f {done} ]; do sleep 0.05; done; echo b1", timeout=20)

    a2, b1 = await step.parallel(a, b, mode="race")
    return [a2.stdout.strip(), b1.stdout.strip()]
'''

REVIEWERS = '''
from agentcmd import define_workflow


@define_workflow(id="reviewers", phases=["review"], retries=0)
async def reviewers(ctx, step):
    with step.phase("review"):
        claude, codex = await step.parallel(
            lambda: step.agent("claude", agent="claude", prompt="Review the diff"),
            lambda: step.agent("codex", agent="codex", prompt="Review the diff too"),
        )
    return {"claude": claude.text, "codex": codex.text, "agents": [claude.agent, codex.agent]}
'''

BAD_BRANCHES = '''
from agentcmd import define_workflow


@define_workflow(id="bad-branches", retries=3)
async def bad_branches(ctx, step):
    how = ctx.input["how"]
    if how == "string":
        await step.parallel(lambda: step.cli("a", "true"), "echo b")
    elif how == "no-await":
        await step.parallel(lambda: 5)
    elif how == "mode":
        await step.parallel(lambda: step.cli("a", "true"), mode="fast")
    return "not reached"
'''


@pytest.fixture
def project_workflows() -> dict[str, str]:
    return {"pair.py": PAIR, "reviewers.py": REVIEWERS, "race.py": RACE}


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            found.append(int(entry.name))
    return found


class App:
    def __init__(self, child: Spawned, port: int) -> None:
        self.child, self.url = child, f"http://127.0.0.1:{port}"

    def start_run(self, workflow: str) -> str:
        resp = httpx.post(f"{self.url}/api/workflows/{workflow}/runs", json={}, timeout=15, headers=app_headers())
        assert resp.status_code in (200, 201, 202), resp.text
        return str(resp.json()["data"]["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        resp = httpx.get(f"{self.url}/api/runs/{run_id}", timeout=10, headers=app_headers())
        data: dict[str, Any] = resp.json()["data"] if resp.status_code == 200 else {}
        return data

    def ended(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        run: dict[str, Any] = wait_for(
            lambda: (r := self.run(run_id)).get("status") in ("Completed", "Failed", "Cancelled") and r,
            timeout, f"run {run_id} to end", self.child.output)
        return run


def start_app(spawn: SpawnFn, project: Path) -> App:
    """``agentcmd start`` for ``project`` (its environment: this process's, fakes included)."""
    port, engine_port = free_ports(2)
    child = spawn("start", "--port", str(port), "--engine-port", str(engine_port), "--project", str(project))
    wait_for(lambda: "ready in " in child.output(), 60, "agentcmd start to be ready", child.output, [child])
    return App(child, port)


@pytest.fixture
def app(spawn: SpawnFn, project: Path) -> App:
    return start_app(spawn, project)


@pytest.mark.slow
def test_branches_run_at_the_same_time_each_as_its_own_step(app: App, project: Path) -> None:
    run_id = app.start_run("pair")
    run = app.ended(run_id)
    assert run["status"] == "Completed", run
    out = run["output"]
    assert out["left"] == f"{run_id}.left" and out["right"] == f"{run_id}.right"
    assert out["pids"][0] != out["pids"][1], "each branch is its own process"
    assert out["phases"] == ["review", "review"] and out["after"] == "after"
    steps = {s["step_id"]: s for s in run["steps"]}
    assert {"review/left", "review/right", "after"} <= set(steps), run["steps"]
    for sid in ("review/left", "review/right"):
        assert steps[sid]["status"] == "Completed" and steps[sid]["phase"] == "review", steps[sid]
        assert steps[sid]["output"]["stdout"].startswith(f"{run_id}.{sid.split('/')[1]} "), steps[sid]
    # They overlapped: each started before the other ended (the app's step records say when).
    left, right = steps["review/left"], steps["review/right"]
    assert left["started_at"] < right["ended_at"] and right["started_at"] < left["ended_at"], (left, right)


@pytest.mark.slow
def test_cancelling_the_run_stops_every_branch_process_group(app: App, project: Path) -> None:
    run_id = app.start_run("pair-long")
    files = [project / f"{run_id}.{name}.pids" for name in ("one", "two")]
    wait_for(lambda: all(f.exists() and len(f.read_text().split()) == 2 for f in files), 30,
             "both branches' commands to start", app.child.output)
    groups = {int(f.read_text().split()[0]): int(f.read_text().split()[1]) for f in files}
    try:
        assert all(group_members(pgid) for pgid in groups), "each branch leads a live process group"
        resp = httpx.post(f"{app.url}/api/runs/{run_id}/cancel", timeout=15, headers=app_headers())
        assert resp.status_code == 200, resp.text
        wait_for(lambda: not any(group_members(pgid) for pgid in groups), 15,
                 "both branches' process groups to be gone", app.child.output)
        assert not any(pid_alive(sleeper) for sleeper in groups.values())
        # Each branch's record is written by its own call as its process group ends: wait for both.
        run = wait_for(lambda: (r := app.run(run_id))["status"] == "Cancelled" and
                       {s["step_id"]: s["status"] for s in r["steps"] if s["step_id"] in ("one", "two")}
                       == {"one": "Cancelled", "two": "Cancelled"} and r,
                       15, "the run and its branches cancelled", app.child.output)
        statuses = {s["step_id"]: s["status"] for s in run["steps"]}
        assert statuses["one"] == statuses["two"] == "Cancelled", run["steps"]
        assert "never" not in statuses and not (project / f"{run_id}.never").exists()
    finally:  # a failed test leaves nothing behind: only the groups this test saw started
        for pgid in groups:
            if group_members(pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)


@pytest.mark.slow
def test_a_failed_branch_fails_the_run_unless_return_exceptions_gives_its_error(app: App) -> None:
    run = app.ended(app.start_run("pair-fail"))
    assert run["status"] == "Failed", run
    assert "exited with code 3: broken" in str(run["steps"]), run
    statuses = {s["step_id"]: s["status"] for s in run["steps"]}
    assert statuses == {"ok": "Completed", "bad": "Failed"}, run["steps"]

    resp = httpx.post(f"{app.url}/api/workflows/pair-fail/runs", json={"gather": True}, timeout=15,
                      headers=app_headers())
    run = app.ended(str(resp.json()["data"]["run_id"]))
    assert run["status"] == "Completed", run
    assert run["output"]["ok"] == "fine" and run["output"]["bad"] == "StepError"
    assert "exited with code 3: broken" in run["output"]["message"]


@pytest.mark.slow
def test_race_mode_lets_a_branch_of_several_steps_go_on_without_waiting_for_the_others(app: App) -> None:
    run = app.ended(app.start_run("race"))
    assert run["status"] == "Completed", run
    assert run["output"] == ["a2", "b1"]
    assert [s["step_id"] for s in run["steps"] if s["status"] == "Completed"].count("b1") == 1


@pytest.mark.parametrize(("how", "message"), [
    ("string", "branch 2 is 'echo b', not a step call; pass lambda: step.cli(...)"),
    ("no-await", "branch 1 returned 5 instead of a step call to await"),
    ("mode", "mode must be 'wait' or 'race', got 'fast'"),
])
def test_a_branch_that_is_not_a_step_call_fails_the_run_at_once_with_what_to_write(
        app_server: Any, write_workflow: Any, how: str, message: str) -> None:
    write_workflow("bad_branches.py", BAD_BRANCHES)
    run = app_server().driver.run("bad-branches", {"how": how}, max_attempts=4)
    assert run.status == "Failed" and len(run.calls) == 1, run.calls  # not retried
    assert message in run.output["message"], run.output
    assert run.names == []


def _agents_running(fake_agents: FakeAgents, n: int) -> list[dict[str, Any]]:
    calls = fake_agents.calls()
    return calls if len(calls) == n and all(pid_alive(c["pid"]) for c in calls) else []


@pytest.mark.slow
def test_two_fake_agents_review_at_once_each_its_own_step(fake_agents: FakeAgents, spawn: SpawnFn,
                                                          project: Path, agentcmd_home: Path) -> None:
    fake_agents.hold()   # each fake waits before its answer: both running at once proves the overlap
    app = start_app(spawn, project)
    run_id = app.start_run("reviewers")
    calls = wait_for(lambda: _agents_running(fake_agents, 2), 30, "both agents running", app.child.output)
    assert sorted(c["agent"] for c in calls) == ["claude", "codex"]
    fake_agents.release()
    run = app.ended(run_id)
    assert run["status"] == "Completed", run
    assert run["output"] == {"claude": "answer to: Review the diff", "codex": "answer to: Review the diff too",
                             "agents": ["claude", "codex"]}
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["review/claude"]["output"]["text"] == "answer to: Review the diff"
    assert steps["review/codex"]["output"]["text"] == "answer to: Review the diff too"
    # Each branch streamed into its own step's stream, and counted its own tokens and cost.
    data_dir = agentcmd_home / "data"
    for sid, agent in (("review/claude", "claude"), ("review/codex", "codex")):
        def kept(sid: str = sid) -> list[dict[str, Any]]:
            events = streamlog.read_events(data_dir, run_id, step_id=sid)
            return events if any(e["kind"] == "tool_call" for e in events) else []

        events = wait_for(kept, 10, f"{sid}'s stream (written by a flush task)")
        assert {e["agent"] for e in events} == {agent}, events
        assert [e["kind"] for e in events].count("tool_call") == 2, events
        assert steps[sid]["output"]["streamed"] is True and steps[sid]["output"]["output_tokens"] == 300
    assert steps["review/claude"]["output"]["cost_usd"] == 0.0123


@pytest.mark.slow
def test_cancelling_stops_both_fake_agents_process_groups(fake_agents: FakeAgents, spawn: SpawnFn,
                                                          project: Path) -> None:
    fake_agents.hold()
    app = start_app(spawn, project)
    run_id = app.start_run("reviewers")
    calls = wait_for(lambda: _agents_running(fake_agents, 2), 30, "both agents running", app.child.output)
    groups = [int(c["pid"]) for c in calls]   # each agent leads its step's process group
    try:
        assert all(group_members(pgid) for pgid in groups)
        resp = httpx.post(f"{app.url}/api/runs/{run_id}/cancel", timeout=15, headers=app_headers())
        assert resp.status_code == 200, resp.text
        wait_for(lambda: not any(group_members(pgid) for pgid in groups), 15,
                 "both agents' process groups to be gone", app.child.output)
        run = wait_for(lambda: (r := app.run(run_id))["status"] == "Cancelled" and
                       sorted(s["status"] for s in r["steps"]) == ["Cancelled", "Cancelled"] and r,
                       15, "the run and both agent steps cancelled", app.child.output)
        assert {s["step_id"] for s in run["steps"]} == {"review/claude", "review/codex"}
    finally:
        for pgid in groups:
            if group_members(pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
