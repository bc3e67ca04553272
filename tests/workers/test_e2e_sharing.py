"""Several ``agentcmd worker`` processes serve one engine: they share the runs, and one can die or drain.

Each worker runs with ``--max-concurrency 1``, so a gated step holds its
worker and the next run must go to the other one: sharing is forced, not
left to the engine's choice.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.engine import EngineProc
from tests.harness.processes import pid_alive
from tests.polling import wait_for
from tests.workers.workerharness import TRIGGER, Calls, WorkerProc, app_workers, history_failures, ready_workers

pytestmark = pytest.mark.slow   # real engines and worker processes


def start_run(engine: EngineProc, send_event: Callable[..., str], runs_for_event: Callable[..., list[str]],
              data: dict[str, Any]) -> str:
    return runs_for_event(engine, send_event(engine, TRIGGER, data))[0]


def run_held_at_step_two(engine: EngineProc, workers: Callable[..., WorkerProc], calls: Calls, tmp_path: Path,
                         send_event: Callable[..., str], runs_for_event: Callable[..., list[str]]
                         ) -> tuple[str, Path, WorkerProc, WorkerProc]:
    """Two ready workers and a run whose step two waits for a gate file: (run, gate, its worker, the other)."""
    a, b = workers(engine, "a"), workers(engine, "b")
    ready_workers(engine, 2, [a, b])
    gate = tmp_path / "gate-two"
    run_id = start_run(engine, send_event, runs_for_event, {"log": str(calls.path), "gate_two": str(gate)})
    first = wait_for(lambda: calls.all(run_id, "two"), 30, "step two to start", children=[a, b])[0]
    holder, other = (a, b) if first["pid"] == a.pid else (b, a)
    return run_id, gate, holder, other


def test_two_workers_share_the_runs(connect_engine: Callable[..., EngineProc], workers: Callable[..., WorkerProc],
                                    calls: Calls, tmp_path: Path, send_event: Callable[..., str],
                                    runs_for_event: Callable[..., list[str]],
                                    wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    engine = connect_engine("dev")
    a, b = workers(engine, "a", "--max-concurrency", "1"), workers(engine, "b", "--max-concurrency", "1")
    listed = ready_workers(engine, 2, [a, b])
    assert {w["instance_id"] for w in listed} == {"a", "b"} and {w["capacity"] for w in listed} == {1}
    page = httpx.get(engine.url + "/apps", timeout=5).text   # the dashboard lists them under the app
    assert "Connected workers of agentcmd" in page and "<td>a</td>" in page and "<td>b</td>" in page
    gate = tmp_path / "gate-one"
    held = [start_run(engine, send_event, runs_for_event, {"log": str(calls.path), "gate_one": str(gate)})
            for _ in range(2)]
    # Both runs' first steps are in flight at once: one on each worker (each takes one at a time).
    wait_for(lambda: len(calls.all(step="one")) == 2, 30, "both first steps to start", calls.path.read_text
             if calls.path.exists() else None, children=[a, b])
    assert {c["pid"] for c in calls.all(step="one")} == {a.pid, b.pid}
    gate.touch()
    more = [start_run(engine, send_event, runs_for_event, {"log": str(calls.path)}) for _ in range(4)]
    for run_id in held + more:
        assert wait_for_run_status(engine, run_id, "Completed", timeout=60)["output"] == ["one", "two", "three"]
    for run_id in held + more:   # every step exactly once
        assert sorted(c["step"] for c in calls.all(run_id)) == ["one", "three", "two"]


def test_a_worker_killed_mid_step_loses_nothing(connect_engine: Callable[..., EngineProc],
                                                workers: Callable[..., WorkerProc], calls: Calls, tmp_path: Path,
                                                send_event: Callable[..., str],
                                                runs_for_event: Callable[..., list[str]],
                                                wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    """SIGKILL mid-step: the step goes to the other worker, same attempt; completed steps never run again."""
    engine = connect_engine("dev")
    run_id, gate, victim, survivor = run_held_at_step_two(engine, workers, calls, tmp_path, send_event,
                                                          runs_for_event)
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    gate.touch()
    run = wait_for_run_status(engine, run_id, "Completed", timeout=60)
    assert run["output"] == ["one", "two", "three"]
    one, two, three = (calls.all(run_id, s) for s in ("one", "two", "three"))
    assert len(one) == 1                                      # completed before the kill: never again
    assert [c["pid"] for c in two] == [victim.pid, survivor.pid]
    assert [c["pid"] for c in three] == [survivor.pid]
    assert {c["attempt"] for c in one + two + three} == {0}   # interrupted, not failed: no attempt used
    assert history_failures(engine, run_id) == []


def test_a_worker_drained_by_sigterm_finishes_its_step_and_gets_no_new_work(
        connect_engine: Callable[..., EngineProc], workers: Callable[..., WorkerProc], calls: Calls, tmp_path: Path,
        send_event: Callable[..., str], runs_for_event: Callable[..., list[str]],
        wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    engine = connect_engine("dev")
    run_id, gate, drained, other = run_held_at_step_two(engine, workers, calls, tmp_path, send_event,
                                                        runs_for_event)
    drained.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: any(w["instance_id"] == drained.name and w["status"] == "draining" for w in app_workers(engine))
             or "draining" in drained.output(), 15, "the worker to drain", drained.output)
    # While it drains, new runs go to the other worker only.
    later = [start_run(engine, send_event, runs_for_event, {"log": str(calls.path)}) for _ in range(3)]
    for later_id in later:
        wait_for_run_status(engine, later_id, "Completed", timeout=60)
        assert {c["pid"] for c in calls.all(later_id)} == {other.pid}
    assert drained.proc.poll() is None, "the draining worker left before its step finished"
    gate.touch()
    assert drained.proc.wait(30) == 0
    run = wait_for_run_status(engine, run_id, "Completed", timeout=60)
    assert run["output"] == ["one", "two", "three"]
    assert [c["pid"] for c in calls.all(run_id, "two")] == [drained.pid]   # finished there, not run again
    assert [c["pid"] for c in calls.all(run_id, "three")] == [other.pid]
    assert "worker stopped" in drained.output()


def test_a_second_sigterm_stops_the_draining_worker_and_its_step_command_at_once(
        connect_engine: Callable[..., EngineProc], workers: Callable[..., WorkerProc], tmp_path: Path,
        send_event: Callable[..., str], runs_for_event: Callable[..., list[str]],
        wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    """No orphan command, exit 130, and the step runs again on the other worker without using an attempt."""
    engine = connect_engine("dev")
    a, b = workers(engine, "a"), workers(engine, "b")
    ready_workers(engine, 2, [a, b])
    started, release = tmp_path / "started", tmp_path / "release"
    command = f"echo $$ $PPID >> {started}; [ -e {release} ] || exec sleep 300"
    run_id = runs_for_event(engine, send_event(engine, "agentcmd/workflow.shell", {"command": command}))[0]
    first = wait_for(lambda: started.exists() and started.read_text().split(), 30, "the step command to start",
                     children=[a, b])
    command_pid, worker_pid = int(first[0]), int(first[1])
    victim, survivor = (a, b) if worker_pid == a.pid else (b, a)
    victim.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "draining" in victim.output(), 15, "the worker to drain", victim.output)
    assert victim.proc.poll() is None and pid_alive(command_pid)   # a drain waits for the step
    release.touch()   # the step's next run (elsewhere) finishes at once
    victim.proc.send_signal(signal.SIGTERM)
    assert victim.proc.wait(10) == 130
    wait_for(lambda: not pid_alive(command_pid), 5, "the step command to be gone")
    wait_for_run_status(engine, run_id, "Completed", timeout=60)
    runs_of_command = started.read_text().splitlines()
    assert [int(line.split()[1]) for line in runs_of_command] == [victim.pid, survivor.pid]
    assert history_failures(engine, run_id) == []
