"""An agent step cut short by a SIGKILL of ``agentcmd start`` continues its session after the restart.

(And by a graceful stop, SIGINT, where the app records the step ``interrupted``.)

Real supervisor, engine, app server and SDK; the fake ``claude`` of
``tests/fakes/bin`` streams its session id first, then works slowly. The
whole tree this test started (supervisor, engine, app, the fake agent) is
SIGKILLed by PID once the session id is in the step's stream meta; after
``agentcmd start`` again the engine re-runs the step, and the fake records
``--resume <that session id>`` with the interrupted note in front of the
prompt; the run completes with ``resumed_session`` in the agent's result.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.harness.fakeagents import FakeAgents
from tests.harness.keys import app_headers
from tests.harness.processes import Spawned, free_port, pid_alive
from tests.polling import wait_for
from tests.supervisor.conftest import child_pids, wait_exit, wait_output
from tests.supervisor.test_restart_resume import descendants, run_status

from agentcmd.workflows import streamlog

SpawnFn = Callable[..., Spawned]

ASK = """
from agentcmd import define_workflow


@define_workflow(id="ask", phases=["work"], retries=0)
async def ask(ctx, step):
    with step.phase("work"):
        answer = await step.agent("fix", prompt="Fix the failing test")
    return {"text": answer.text, "session": answer.session_id, "resumed": answer.resumed_session}
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill", "sigint"])
def test_an_agent_interrupted_by_a_sigkill_of_start_continues_its_session(
        spawn: SpawnFn, project: Path, agentcmd_home: Path, fake_agents: FakeAgents, how: str) -> None:
    (project / ".agentcmd" / "workflows" / "ask.py").write_text(ASK)
    fake_agents.hold()   # the fake streams its session id, then waits before its answer
    port, engine_port = free_port(), free_port()
    args = ("start", "--port", str(port), "--engine-port", str(engine_port), "--project", str(project))
    child = spawn(*args)
    wait_output(child, "ready in ", timeout=30)
    resp = httpx.post(f"http://127.0.0.1:{port}/api/workflows/ask/runs", json={}, timeout=15,
                      headers=app_headers())
    run_id = str(resp.json()["data"]["run_id"])
    data_dir = agentcmd_home / "data"
    meta = wait_for(lambda: (m := streamlog.step_meta(data_dir, run_id, "work/fix")) and m.get("session_id") and m,
                    30, "the fake claude to stream its session id", child.output)
    session = str(meta["session_id"])
    assert len(fake_agents.calls()) == 1

    # The tree this test started, by PID: the supervisor, its children (they lead their own sessions)
    # and theirs, down to the fake agent.
    tree = [child.proc.pid, *descendants(child.proc.pid)]
    for pid in child_pids(child.output()).values():
        tree += descendants(pid)
    try:
        if how == "sigint":   # graceful: the app stops the agent and records the step interrupted
            os.kill(child.proc.pid, signal.SIGINT)
            assert wait_exit(child, timeout=30) == 0, child.output()
        else:                 # SIGKILL of all of it: nothing graceful happens
            for pid in sorted(set(tree)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            child.proc.wait(10)
        wait_for(lambda: not any(pid_alive(p) for p in tree), 10, "the stopped tree to be gone")

        fake_agents.release()   # the next fake answers at once
        again = spawn(*args)
        wait_output(again, "ready in ", timeout=30)
        wait_for(lambda: run_status(port, run_id) in ("Completed", "Failed", "Cancelled"), 60,
                 "the run to end after the restart", again.output)
        assert run_status(port, run_id) == "Completed", again.output()
    finally:
        for pid in tree:   # only what this test started, should a step above have failed
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    calls = fake_agents.calls()
    assert len(calls) == 2, calls
    assert calls[0]["resume"] is None and calls[1]["resume"] == session, calls
    argv = calls[1]["argv"]
    assert argv[argv.index("--resume") + 1] == session and calls[1]["streaming"], argv
    prompt = calls[1]["prompt"]
    assert prompt.startswith("[agentcmd] Your previous run of this step was interrupted"), prompt
    assert prompt.endswith("\n\nFix the failing test") and calls[0]["prompt"] == "Fix the failing test"
    output = httpx.get(f"http://127.0.0.1:{port}/api/runs/{run_id}", timeout=10,
                       headers=app_headers()).json()["data"]["output"]
    assert output["resumed"] == session, output
    notices = wait_for(lambda: [e for e in streamlog.read_events(data_dir, run_id, step_id="work/fix")
                                if e["kind"] == "notice"], 10, "the resume notice in the step's stream")
    assert [e["text"] for e in notices] == [f"resuming interrupted session {session}"], notices
    os.kill(again.proc.pid, signal.SIGINT)
    assert wait_exit(again, timeout=30) == 0, again.output()
