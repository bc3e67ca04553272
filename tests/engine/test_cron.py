"""Cron triggers are queue rows: a due row starts a run and schedules the next tick."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import inngest

from agentcmd.engine.triggers import next_cron_ms


def test_next_cron_time_with_and_without_a_time_zone() -> None:
    noon_utc = 1_735_732_800_000        # 2025-01-01T12:00:00Z
    assert next_cron_ms("0 13 * * *", noon_utc) == noon_utc + 3_600_000
    assert next_cron_ms("TZ=Europe/Paris 0 14 * * *", noon_utc) == noon_utc + 3_600_000


def test_a_due_cron_row_starts_a_run_and_queues_the_next_tick(
        engine_factory: Any, sdk_factory: Any, client_for: Any, wait_for_run_status: Any) -> None:
    engine = engine_factory("production")
    client = client_for(engine)

    @client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="0 3 * * *"))
    async def nightly(ctx: inngest.Context) -> str:
        return str(ctx.event.name)

    sdk_factory(engine, client, [nightly])
    assert engine.sqlite_dir is not None
    db = engine.sqlite_dir / "engine.db"
    with sqlite3.connect(db, timeout=5) as conn:
        [(ready_at,)] = conn.execute("SELECT ready_at FROM queue WHERE kind='cron'").fetchall()
        assert ready_at > time.time() * 1000
        conn.execute("UPDATE queue SET ready_at=0 WHERE kind='cron'")   # make the tick due now
    deadline = time.monotonic() + 10
    runs: list[Any] = []
    while time.monotonic() < deadline and not runs:
        runs = engine.get("/v1/runs").json()["data"]
        time.sleep(0.05)
    assert len(runs) == 1
    assert wait_for_run_status(engine, runs[0]["run_id"], "Completed")["output"] == "inngest/scheduled.timer"
    with sqlite3.connect(db, timeout=5) as conn:
        [(nxt,)] = conn.execute("SELECT ready_at FROM queue WHERE kind='cron'").fetchall()
    assert nxt > time.time() * 1000
