"""A connect worker and its engine: restarts, keys, and steps longer than the engine's call timeout."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.engine import EngineProc
from tests.polling import wait_for
from tests.workers.workerharness import TRIGGER, Calls, WorkerProc, history_failures, ready_workers

pytestmark = pytest.mark.slow   # real engines and worker processes

WRONG_KEY = "signkey-prod-" + secrets.token_hex(32)


def test_an_in_flight_run_resumes_after_the_production_engine_restarts(
        connect_engine: Callable[..., EngineProc], workers: Callable[..., WorkerProc], calls: Calls, tmp_path: Path,
        send_event: Callable[..., str], runs_for_event: Callable[..., list[str]],
        wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    """The engine (SQLite file) stops mid-step and starts again: the worker reconnects, the run completes."""
    engine = connect_engine("production")
    worker = workers(engine, "a")
    ready_workers(engine, 1, [worker])
    gate = tmp_path / "gate-two"
    run_id = runs_for_event(engine, send_event(engine, TRIGGER, {"log": str(calls.path), "gate_two": str(gate)}))[0]
    wait_for(lambda: calls.all(run_id, "two"), 30, "step two to start", children=[worker])
    assert engine.stop() == 0
    gate.touch()
    engine.start()   # same port, same --sqlite-dir
    ready_workers(engine, 1, [worker], timeout=60)
    run = wait_for_run_status(engine, run_id, "Completed", timeout=60)
    assert run["output"] == ["one", "two", "three"]
    assert len(calls.all(run_id, "one")) == 1                    # memoised across the restart
    assert {c["attempt"] for c in calls.all(run_id)} == {0}
    assert history_failures(engine, run_id) == []
    assert worker.proc.poll() is None


def test_a_wrong_signing_key_is_refused_with_a_clear_message(connect_engine: Callable[..., EngineProc],
                                                             workers: Callable[..., WorkerProc]) -> None:
    engine = connect_engine("production")
    worker = workers(engine, "a", key=WRONG_KEY)
    assert worker.proc.wait(30) == 2
    out = worker.output()
    assert "refused the worker's credentials (401" in out
    assert "fix: set INNGEST_SIGNING_KEY" in out and "Traceback" not in out
    assert WRONG_KEY not in out and WRONG_KEY[13:] not in out   # never logged


def test_a_missing_signing_key_is_refused_before_connecting(connect_engine: Callable[..., EngineProc],
                                                            workers: Callable[..., WorkerProc]) -> None:
    engine = connect_engine("production")
    worker = workers(engine, "a", key="")
    assert worker.proc.wait(30) == 2
    out = worker.output()
    assert "a production worker needs the engine's signing key" in out and "Traceback" not in out
    # And the engine itself refuses a start without the key, saying what to do.
    resp = httpx.post(engine.url + "/v0/connect/start", content=b"", timeout=5,
                      headers={"Content-Type": "application/protobuf"})
    assert resp.status_code == 401 and resp.text


def test_a_dev_worker_against_a_production_engine_is_told_to_use_production(
        connect_engine: Callable[..., EngineProc], workers: Callable[..., WorkerProc]) -> None:
    engine = connect_engine("production")
    worker = workers(engine, "a", "--dev")
    assert worker.proc.wait(30) == 2
    assert "run the worker with --production" in worker.output()


def test_a_step_longer_than_the_call_timeout_completes_over_connect(
        connect_engine: Callable[..., EngineProc], workers: Callable[..., WorkerProc], calls: Calls,
        send_event: Callable[..., str], runs_for_event: Callable[..., list[str]],
        wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    """An agent-length step holds no HTTP call: the worker extends its lease, no call timeout applies."""
    engine = connect_engine("dev", ("--call-timeout", "1"))
    worker = workers(engine, "a")
    ready_workers(engine, 1, [worker])
    run_id = runs_for_event(engine, send_event(engine, "agentcmd/workflow.slow",
                                               {"log": str(calls.path), "seconds": 4}))[0]
    run = wait_for_run_status(engine, run_id, "Completed", timeout=60)
    assert run["output"] == "done"
    assert [c["attempt"] for c in calls.all(run_id)] == [0]   # one call, no retry after 1 s
    assert history_failures(engine, run_id) == []
