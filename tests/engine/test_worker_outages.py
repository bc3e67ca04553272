"""The engine's worker outlives what passes, and does not outlive a bug.

Another process holding the database's write lock (a backup, the sqlite3
shell) is an outage, not a crash: the engine waits ``busy_timeout`` (2 s),
answers 503 to new events, its worker keeps retrying, and once the lock is
released everything carries on. A bug that kills the worker's loop stops
the engine with exit 1 rather than leaving it accepting events it never runs.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import httpx


def test_a_lock_held_by_another_process_answers_503_then_the_engine_carries_on(
        engine_factory: Callable[..., Any], client_for: Callable[..., Any], sdk_factory: Callable[..., Any],
        runs_for_event: Callable[..., list[str]], wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    import inngest

    engine = engine_factory("production")
    client = client_for(engine)

    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="lock/echo"), retries=0)
    async def echo(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        return str(await ctx.step.run("one", lambda: "ok"))

    sdk_factory(engine, client, [echo])
    url = f"{engine.url}/e/{engine.key}"
    sent = time.monotonic()
    before = httpx.post(url, json={"name": "lock/echo"}, timeout=10).json()["ids"][0]
    [sleeping] = runs_for_event(engine, before)
    wait_for_run_status(engine, sleeping, "Running")          # its wake-up is a queue row, due in 1 s

    holder = sqlite3.connect(engine.sqlite_dir / "engine.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")                      # the write lock, as a backup would take it
    try:
        refused = httpx.post(url, json={"name": "lock/echo"}, timeout=10)
        assert refused.status_code == 503, refused.text
        body = refused.json()
        assert body["ids"] == [] and body["code"] == "database_locked"
        assert "locked by another process" in body["error"] and "retries by itself" in body["hint"]
        health = httpx.get(engine.url + "/health", timeout=10).json()
        assert health["status"] == "degraded" and "locked by another process" in health["database_error"]
        # The wake-up comes due while the lock is held: the worker's lease runs into the lock too.
        deadline = time.monotonic() + 15
        while "retrying in 1 s" not in engine.output():
            assert time.monotonic() < deadline, engine.output()
            time.sleep(0.1)
        assert time.monotonic() > sent + 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    # The worker survived the lock: the sleeping run wakes up and ends.
    assert wait_for_run_status(engine, sleeping, "Completed")["output"] == "ok"

    deadline = time.monotonic() + 15
    while True:                                            # the engine may still be finishing a lock wait
        after = httpx.post(url, json={"name": "lock/echo"}, timeout=10)
        if after.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after.status_code == 200, after.text
    wait_for_run_status(engine, runs_for_event(engine, after.json()["ids"][0])[0], "Completed")
    assert httpx.get(engine.url + "/health", timeout=5).json()["status"] == "ok"


def test_a_worker_that_dies_of_an_engine_bug_stops_the_engine_with_exit_1(
        engine_factory: Callable[..., Any]) -> None:
    """Not a silent stall (events accepted, nothing run): exit 1, and the next start resumes everything."""
    engine = engine_factory("production", env={"AGENTCMD_ENGINE_CRASH_AT": "worker_turn:3"}, start=False)
    engine.start(wait=False)
    assert engine.proc is not None
    assert engine.proc.wait(20) == 1
    out = engine.output()
    assert "the engine's worker stopped unexpectedly" in out and "injected engine bug" in out
    assert "stopped after a fatal error" in out
    engine.env.pop("AGENTCMD_ENGINE_CRASH_AT")
    engine.start()
    assert httpx.get(engine.url + "/health", timeout=5).json()["status"] == "ok"
