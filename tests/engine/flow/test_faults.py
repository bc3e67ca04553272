"""start mode: SIGKILL the engine mid-flow, restart it on the same SQLite file; nothing is lost or doubled.

Each test kills a real ``agentcmd engine start`` subprocess while some state
lives only in the database (a debounce timer, a half-filled batch, an in-flight
cron tick, a parked ``wait_for_event``), restarts it on the same file and counts
executions with ``step_log``. A concurrency-limited queue with parked runs is
covered by ``test_concurrency_restart.py``; there was no cron restart test.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import time
from typing import Any

import inngest
import pytest
from tests.polling import wait_for

pytestmark = pytest.mark.slow


def _rows(engine: Any, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
    conn = sqlite3.connect(str(engine.sqlite_dir / "engine.db"), timeout=5)
    try:
        return list(conn.execute(sql, args).fetchall())
    finally:
        conn.close()


def _buffer_events(engine: Any, kind: str) -> list[Any]:
    """The events held by the debounce or batch queue rows (empty when none)."""
    rows = _rows(engine, "SELECT payload FROM queue WHERE kind=?", (kind,))
    return [e["data"]["n"] for (payload,) in rows for e in json.loads(payload)["events"]]


def _all_runs(engine: Any) -> list[dict[str, Any]]:
    return list(engine.get("/v1/runs").json()["data"])


def _debounced(client: Any, log: Any, fn_id: str, event: str, debounce: inngest.Debounce) -> Any:
    """A debounced function whose one step logs and returns the ``n`` of the event it ran with."""
    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event), debounce=debounce)
    async def debounced(ctx: inngest.Context) -> int:
        async def work() -> int:
            log.add(f"ran {ctx.event.data['n']}")
            return int(ctx.event.data["n"])

        return await ctx.step.run("work", work)

    return debounced


def _batched(client: Any, log: Any, fn_id: str, event: str, batch: inngest.Batch, sort: bool = False) -> Any:
    """A batched function whose one step logs and returns the ``n`` of every event in its batch."""
    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event), batch_events=batch)
    async def batched(ctx: inngest.Context) -> list[int]:
        async def work() -> list[int]:
            ns = [int(e.data["n"]) for e in ctx.events]
            ns = sorted(ns) if sort else ns
            log.add("batch " + ",".join(map(str, ns)))
            return ns

        return await ctx.step.run("work", work)

    return batched


def test_a_debounce_window_survives_sigkill_and_fires_once_with_the_last_event(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="fault-debounce")

    debounced = _debounced(client, log, "debounced", "fd/go",
                           inngest.Debounce(period=datetime.timedelta(seconds=2)))

    sdk_factory(engine, client, [debounced])
    for n in (1, 2):
        send_event(engine, "fd/go", {"n": n})
    wait_for(lambda: _buffer_events(engine, "debounce") == [2],
             timeout=10, what="the debounce row to hold the last event")
    assert log.lines() == [], "killed inside the window: nothing has fired yet"
    engine.kill()
    engine.start()
    wait_for(lambda: log.lines(), timeout=10, what="the debounced run")
    [run] = wait_for(lambda: _all_runs(engine), timeout=10, what="one run")
    assert wait_for_run_status(engine, run["run_id"], "Completed")["output"] == 2
    assert _buffer_events(engine, "debounce") == [], "no timer left that could fire again"
    assert log.lines() == ["ran 2"]
    assert len(_all_runs(engine)) == 1


def test_a_half_filled_batch_survives_sigkill_and_completes_once_with_every_event(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="fault-batch")

    batched = _batched(client, log, "batched", "fb/go",
                       inngest.Batch(max_size=3, timeout=datetime.timedelta(seconds=20)))

    sdk_factory(engine, client, [batched])
    for n in (1, 2):
        send_event(engine, "fb/go", {"n": n})
    wait_for(lambda: _buffer_events(engine, "batch") == [1, 2], timeout=10, what="the batch row to hold two events")
    engine.kill()
    engine.start()
    send_event(engine, "fb/go", {"n": 3})        # fills the batch the dead engine started
    wait_for(lambda: log.lines(), timeout=10, what="the batched run")
    [run] = wait_for(lambda: _all_runs(engine), timeout=10, what="one run")
    assert wait_for_run_status(engine, run["run_id"], "Completed")["output"] == [1, 2, 3]
    assert _buffer_events(engine, "batch") == [], "no buffer left that could fire again"
    assert log.lines() == ["batch 1,2,3"]
    assert len(_all_runs(engine)) == 1


def test_a_batch_with_one_event_at_sigkill_fires_by_its_timeout_after_restart(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="fault-batch-timeout")

    batched = _batched(client, log, "batched-timeout", "fbt/go",
                       inngest.Batch(max_size=5, timeout=datetime.timedelta(seconds=1)))

    sdk_factory(engine, client, [batched])
    send_event(engine, "fbt/go", {"n": 1})
    wait_for(lambda: _buffer_events(engine, "batch") == [1], timeout=10, what="the batch row")
    engine.kill()
    assert log.lines() == [], "killed before the batch timeout"
    engine.start()
    [run] = wait_for(lambda: _all_runs(engine), timeout=10, what="one run")
    assert wait_for_run_status(engine, run["run_id"], "Completed")["output"] == [1]
    assert _buffer_events(engine, "batch") == []
    assert log.lines() == ["batch 1"]
    assert len(_all_runs(engine)) == 1


def test_a_cron_tick_in_flight_at_sigkill_finishes_once_and_the_next_tick_stays_queued(
        engine_factory: Any, sdk_factory: Any, client_for: Any, wait_for_run_status: Any,
        step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    gate = threading.Event()
    client = client_for(engine, app_id="fault-cron")

    @client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="0 3 * * *"), retries=1)
    async def nightly(ctx: inngest.Context) -> str:
        async def tick() -> str:
            log.add("tick")
            while not gate.is_set():         # still running inside the SDK when the engine dies
                await __import__("asyncio").sleep(0.01)
            return "done"

        await ctx.step.run("tick", tick)

        async def after() -> str:
            log.add("after")
            return str(ctx.event.name)

        return await ctx.step.run("after", after)

    sdk_factory(engine, client, [nightly])
    [(row_id, ready_at)] = _rows(engine, "SELECT id, ready_at FROM queue WHERE kind='cron'")
    assert ready_at > time.time() * 1000
    conn = sqlite3.connect(str(engine.sqlite_dir / "engine.db"), timeout=5)
    with conn:
        conn.execute("UPDATE queue SET ready_at=0 WHERE id=?", (row_id,))   # make the tick due now
    conn.close()
    wait_for(lambda: log.count("tick") == 1, timeout=10, what="the tick's step to start")
    engine.kill()
    gate.set()
    engine.start()
    [run] = wait_for(lambda: _all_runs(engine), timeout=10, what="one run")
    assert wait_for_run_status(engine, run["run_id"], "Completed", timeout=20)["output"] == \
        "inngest/scheduled.timer"
    # the tick's step was cut off by the kill, so it runs again (at-least-once); the run is not doubled
    assert log.count("tick") == 2 and log.count("after") == 1, log.lines()
    assert len(_all_runs(engine)) == 1
    [(nxt,)] = _rows(engine, "SELECT ready_at FROM queue WHERE kind='cron'")
    assert nxt > time.time() * 1000, "exactly one next tick, in the future"


def test_a_cron_tick_due_while_the_engine_is_down_fires_once_after_restart(
        engine_factory: Any, sdk_factory: Any, client_for: Any, wait_for_run_status: Any,
        step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="fault-cron-missed")

    @client.create_function(fn_id="hourly", trigger=inngest.TriggerCron(cron="0 * * * *"))
    async def hourly(ctx: inngest.Context) -> str:
        async def tick() -> str:
            log.add("tick")
            return "done"

        return await ctx.step.run("tick", tick)

    sdk_factory(engine, client, [hourly])
    engine.kill()
    conn = sqlite3.connect(str(engine.sqlite_dir / "engine.db"), timeout=5)
    with conn:
        conn.execute("UPDATE queue SET ready_at=? WHERE kind='cron'", (int(time.time() * 1000) - 1000,))
    conn.close()
    engine.start()
    [run] = wait_for(lambda: _all_runs(engine), timeout=10, what="one run")
    wait_for_run_status(engine, run["run_id"], "Completed")
    [(nxt,)] = _rows(engine, "SELECT ready_at FROM queue WHERE kind='cron'")
    assert nxt > time.time() * 1000
    assert log.lines() == ["tick"]
    assert len(_all_runs(engine)) == 1


def test_a_parked_wait_for_event_survives_sigkill_and_resumes_once_with_the_reply(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="fault-wait")

    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="fw/start"), retries=0)
    async def waiter(ctx: inngest.Context) -> Any:
        async def before() -> str:
            log.add("before")
            return "b"

        await ctx.step.run("before", before)
        got = await ctx.step.wait_for_event("reply", event="fw/reply", if_exp="event.data.k == async.data.k",
                                            timeout=datetime.timedelta(seconds=30))

        async def after() -> Any:
            log.add("after")
            return None if got is None else got.data["v"]

        return await ctx.step.run("after", after)

    sdk_factory(engine, client, [waiter])
    [run_id] = runs_for_event(engine, send_event(engine, "fw/start", {"k": "a"}))
    wait_for(lambda: _rows(engine, "SELECT 1 FROM pauses"), timeout=10, what="the wait to be parked")
    engine.kill()
    engine.start()
    send_event(engine, "fw/reply", {"k": "b", "v": "wrong key"})
    send_event(engine, "fw/reply", {"k": "a", "v": "yes"})
    assert wait_for_run_status(engine, run_id, "Completed")["output"] == "yes"
    assert _rows(engine, "SELECT 1 FROM pauses") == [], "the wait is consumed, not left to match again"
    assert log.lines() == ["before", "after"]
    assert len(_all_runs(engine)) == 1
    assert engine.get(f"/v1/runs/{run_id}").json()["data"]["output"] == "yes"


def test_an_event_after_restart_extends_the_debounce_window_set_before_the_kill(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="fault-debounce-extend")

    debounced = _debounced(client, log, "debounced-extend", "fde/go",
                           inngest.Debounce(period=datetime.timedelta(seconds=2), key="event.data.k"))

    sdk_factory(engine, client, [debounced])
    send_event(engine, "fde/go", {"n": 1, "k": "x"})
    wait_for(lambda: _buffer_events(engine, "debounce") == [1], timeout=10, what="the debounce row")
    engine.kill()
    assert log.lines() == []
    engine.start()
    send_event(engine, "fde/go", {"n": 2, "k": "x"})     # same key: replaces the timer, not a second one
    [run] = wait_for(lambda: _all_runs(engine), timeout=10, what="one run")
    assert wait_for_run_status(engine, run["run_id"], "Completed")["output"] == 2
    assert _buffer_events(engine, "debounce") == []
    assert log.lines() == ["ran 2"]
    assert len(_all_runs(engine)) == 1


def test_events_accepted_just_before_sigkill_are_all_batched_once(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="fault-accept")

    batched = _batched(client, log, "batched-accept", "fa/go",
                       inngest.Batch(max_size=4, timeout=datetime.timedelta(seconds=20)), sort=True)

    sdk_factory(engine, client, [batched])
    for n in range(1, 5):
        send_event(engine, "fa/go", {"n": n})   # each 200 means stored; dispatch may not have happened yet
    engine.kill()
    engine.start()
    [run] = wait_for(lambda: _all_runs(engine), timeout=10, what="one run")
    assert wait_for_run_status(engine, run["run_id"], "Completed")["output"] == [1, 2, 3, 4]
    assert _buffer_events(engine, "batch") == []
    # the kill may land while the run's step is inside the SDK: that step runs again (at-least-once),
    # but there is one run, with every event, never a second batch
    assert log.lines() in (["batch 1,2,3,4"], ["batch 1,2,3,4"] * 2), log.lines()
    assert len(_all_runs(engine)) == 1


def test_a_wait_that_expired_while_the_engine_was_down_resumes_once_even_if_a_reply_races_it(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="fault-wait-expired")

    @client.create_function(fn_id="waiter-expired", trigger=inngest.TriggerEvent(event="fwx/start"), retries=0)
    async def waiter(ctx: inngest.Context) -> Any:
        got = await ctx.step.wait_for_event("reply", event="fwx/reply", timeout=datetime.timedelta(minutes=10))

        async def after() -> Any:
            log.add("after")
            return None if got is None else got.data["v"]

        return await ctx.step.run("after", after)

    sdk_factory(engine, client, [waiter])
    [run_id] = runs_for_event(engine, send_event(engine, "fwx/start"))
    wait_for(lambda: _rows(engine, "SELECT 1 FROM queue WHERE kind='wait_timeout'"),
             timeout=10, what="the wait to be parked")
    engine.kill()
    past = int(time.time() * 1000) - 1000
    conn = sqlite3.connect(str(engine.sqlite_dir / "engine.db"), timeout=5)
    with conn:                                   # ten minutes pass while the engine is down
        conn.execute("UPDATE queue SET ready_at=? WHERE kind='wait_timeout'", (past,))
        conn.execute("UPDATE pauses SET expires_at=?", (past,))
    conn.close()
    engine.start()
    send_event(engine, "fwx/reply", {"v": "late"})
    run = wait_for_run_status(engine, run_id, "Completed")
    assert run["output"] is None, "the timeout was due first: the late reply does not count"
    assert log.lines() == ["after"]
    assert _rows(engine, "SELECT 1 FROM pauses") == []
    assert _rows(engine, "SELECT 1 FROM queue WHERE kind='wait_timeout'") == []


def test_a_debounce_timeout_counts_from_the_first_event_before_the_kill(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="fault-debounce-timeout")

    debounced = _debounced(client, log, "debounced-timeout", "fdt/go",
                           inngest.Debounce(period=datetime.timedelta(seconds=8),
                                            timeout=datetime.timedelta(seconds=4)))

    sdk_factory(engine, client, [debounced])
    first_ms = time.time() * 1000
    send_event(engine, "fdt/go", {"n": 1})
    wait_for(lambda: _buffer_events(engine, "debounce") == [1], timeout=10, what="the debounce row")
    engine.kill()
    engine.start()
    send_event(engine, "fdt/go", {"n": 2})    # alone, its 8 s period would push the start past the 4 s timeout
    wait_for(lambda: _buffer_events(engine, "debounce") == [2],
             timeout=10, what="the debounce row to hold the new event")
    [(payload, ready_at)] = _rows(engine, "SELECT payload, ready_at FROM queue WHERE kind='debounce'")
    assert json.loads(payload)["first_at"] <= first_ms + 500, "the first event's time survived the kill"
    assert ready_at <= first_ms + 4500, "the timeout still binds after the restart"
    [run] = wait_for(lambda: _all_runs(engine), timeout=10, what="one run")
    assert wait_for_run_status(engine, run["run_id"], "Completed")["output"] == 2
    assert log.lines() == ["ran 2"]
    assert len(_all_runs(engine)) == 1


@pytest.mark.parametrize(("point", "executions"), [("before_call:1", 1), ("after_call:1", 2)])
def test_a_crash_as_the_debounced_run_starts_does_not_start_it_twice(
        point: str, executions: int, engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production", start=False)
    engine.start(extra_env={"AGENTCMD_ENGINE_CRASH_AT": point})
    log = step_log()
    client = client_for(engine, app_id="fault-debounce-start")

    debounced = _debounced(client, log, "debounced-start", "fds/go",
                           inngest.Debounce(period=datetime.timedelta(seconds=1)))

    sdk_factory(engine, client, [debounced])
    send_event(engine, "fds/go", {"n": 7})
    assert engine.proc.wait(15) == 137, engine.output()    # the debounce fired, then the engine died
    engine.start()
    [run] = wait_for(lambda: _all_runs(engine), timeout=10, what="one run")
    assert wait_for_run_status(engine, run["run_id"], "Completed")["output"] == 7
    assert _buffer_events(engine, "debounce") == []
    assert log.lines() == ["ran 7"] * executions      # a call cut off before its commit runs again
    assert len(_all_runs(engine)) == 1
