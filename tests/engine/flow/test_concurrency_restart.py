"""start mode: calls waiting on a full concurrency key, and a throttled start, survive a SIGKILL."""

from __future__ import annotations

import datetime
import sqlite3
import time
from typing import Any

import httpx
import inngest
import pytest


def _slow_pair(client: Any, log: Any) -> Any:
    @client.create_function(fn_id="one-lane", trigger=inngest.TriggerEvent(event="cc/lane"),
                            concurrency=[inngest.Concurrency(limit=1)], retries=0)
    async def one_lane(ctx: inngest.Context) -> Any:
        n = ctx.event.data["n"]

        async def work() -> int:
            log.add(f"start-{n}")
            time.sleep(1.0)           # blocks the SDK's loop: calls really are one at a time
            log.add(f"end-{n}")
            return int(n)

        return await ctx.step.run("work", work)

    return one_lane


def _parked(db: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM flow_waiting").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.slow
def test_parked_calls_survive_sigkill_and_each_step_runs_once(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="lane")
    sdk_factory(engine, client, [_slow_pair(client, log)])
    ids = [send_event(engine, "cc/lane", {"n": n}) for n in range(5)]
    run_ids = [runs_for_event(engine, eid)[0] for eid in ids]
    db = str(engine.sqlite_dir / "engine.db")
    deadline = time.monotonic() + 10
    while _parked(db) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _parked(db) >= 3, "queued calls wait as rows in SQLite"
    engine.kill()
    engine.start()
    for run_id in run_ids:
        wait_for_run_status(engine, run_id, "Completed", timeout=30)
    lines = log.lines()
    # one at a time, before and after the restart: every start is followed by its own end
    for i in range(0, len(lines) - 1, 2):
        assert lines[i].replace("start", "end") == lines[i + 1], lines
    # a call cut off by the kill may run again (at-least-once); the parked ones ran exactly once
    for n in range(5):
        assert 1 <= log.count(f"end-{n}") <= 2
    assert sum(log.count(f"end-{n}") for n in range(5)) <= 6
    assert _parked(db) == 0
    r = httpx.get(engine.url + "/health", timeout=5)
    assert r.status_code == 200


@pytest.mark.slow
def test_a_throttled_run_keeps_its_later_start_across_sigkill(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    log = step_log()
    client = client_for(engine, app_id="slow-lane")

    @client.create_function(fn_id="throttled", trigger=inngest.TriggerEvent(event="th/go"),
                            throttle=inngest.Throttle(limit=1, period=datetime.timedelta(seconds=3)))
    async def throttled(ctx: inngest.Context) -> float:
        async def mark() -> float:
            log.add(f"{ctx.event.data['n']} {time.time():.3f}")
            return time.time()

        return await ctx.step.run("mark", mark)

    sdk_factory(engine, client, [throttled])
    first, second = (runs_for_event(engine, send_event(engine, "th/go", {"n": n}))[0] for n in (1, 2))
    wait_for_run_status(engine, first, "Completed")
    engine.kill()          # the second run is queued with a start ~3 s away, as a row in SQLite
    engine.start()
    wait_for_run_status(engine, second, "Completed", timeout=20)
    starts = {line.split()[0]: float(line.split()[1]) for line in log.lines()}
    assert len(log.lines()) == 2, log.lines()
    assert starts["2"] - starts["1"] >= 2.9
