"""Backup while runs are in flight, restore after changes, and the runs carry on (real engine, real SDK).

Three runs are in flight when ``agentcmd backup`` copies the database of a
running production engine: one waits for an event, one sleeps, one is inside
an SDK call (its step has not returned). The engine then moves on (two runs
complete), ``agentcmd restore`` is refused while it runs, and after a stop the
backup is restored over the changed database. On the next start every run is
where the backup left it: the waiting run waits again and completes on its
event, the sleeper wakes, and the interrupted step runs again. Steps the backup
had recorded as completed are not run again.
"""

from __future__ import annotations

import datetime
import sqlite3
import threading
from pathlib import Path
from typing import Any

import inngest
import pytest
from tests.harness.processes import run_cli
from tests.polling import wait_for

pytestmark = pytest.mark.slow


def _functions(client: Any, log: Any, gate: threading.Event, entered: threading.Event) -> list[Any]:
    @client.create_function(fn_id="waits", trigger=inngest.TriggerEvent(event="bk/wait"), retries=0)
    async def waits(ctx: inngest.Context) -> Any:
        await ctx.step.run("before", lambda: log.add("before") or "b")
        got = await ctx.step.wait_for_event("approval", event="bk/approve", if_exp="async.data.n == event.data.n",
                                            timeout=datetime.timedelta(hours=1))
        await ctx.step.run("after", lambda: log.add("after") or "a")
        return None if got is None else got.data["by"]

    @client.create_function(fn_id="naps", trigger=inngest.TriggerEvent(event="bk/nap"), retries=0)
    async def naps(ctx: inngest.Context) -> str:
        await ctx.step.run("dozing", lambda: log.add("dozing") or "d")
        await ctx.step.sleep("nap", datetime.timedelta(seconds=float(ctx.event.data["seconds"])))
        return "rested"

    @client.create_function(fn_id="busy", trigger=inngest.TriggerEvent(event="bk/busy"), retries=0)
    async def busy(ctx: inngest.Context) -> str:
        await ctx.step.run("first", lambda: log.add("first") or "f")

        async def slow() -> str:
            import asyncio

            log.add("slow")
            entered.set()
            while not gate.is_set():
                await asyncio.sleep(0.01)
            return "done"

        return await ctx.step.run("slow", slow)

    return [waits, naps, busy]


def _rows(db: Path, sql: str, *args: Any) -> list[Any]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_backup_in_flight_restore_after_changes_and_every_run_resumes(
        tmp_path: Path, engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any,
        runs_for_event: Any, wait_for_run_status: Any, step_log: Any) -> None:
    engine = engine_factory("production")
    db = engine.sqlite_dir / "engine.db"
    env = {"AGENTCMD_HOME": str(tmp_path / "home"), "AGENTCMD_SQLITE_DIR": str(engine.sqlite_dir)}
    client = client_for(engine, "bk")
    log = step_log()
    gate, entered = threading.Event(), threading.Event()
    sdk_factory(engine, client, _functions(client, log, gate, entered))

    [waiting] = runs_for_event(engine, send_event(engine, "bk/wait", {"n": 1}))
    [sleeping] = runs_for_event(engine, send_event(engine, "bk/nap", {"seconds": 3}))
    [calling] = runs_for_event(engine, send_event(engine, "bk/busy"))
    wait_for(lambda: _rows(db, "SELECT 1 FROM pauses WHERE run_id = ? AND kind = 'wait'", waiting), 15,
             "the run to wait for its event")
    wait_for(lambda: _rows(db, "SELECT 1 FROM steps WHERE run_id = ? AND name = 'dozing'", sleeping), 15,
             "the sleeper to start its sleep")
    assert entered.wait(15), "the slow step never started"

    made = run_cli("backup", str(tmp_path / "in-flight.db"), env=env)
    assert made.returncode == 0, made.stderr
    assert "while an engine was running" in made.stdout and "3 runs (3 in flight)" in made.stdout, made.stdout

    # The engine moves on after the backup: the waiting run and the busy run complete.
    send_event(engine, "bk/approve", {"n": 1, "by": "first-approver"})
    gate.set()
    assert wait_for_run_status(engine, waiting, "Completed")["output"] == "first-approver"
    assert wait_for_run_status(engine, calling, "Completed")["output"] == "done"

    refused = run_cli("restore", str(tmp_path / "in-flight.db"), env=env)
    assert refused.returncode == 3 and "in use by a running engine" in refused.stderr, refused.stderr
    assert engine.stop() == 0

    restored = run_cli("restore", str(tmp_path / "in-flight.db"), env=env)
    assert restored.returncode == 0, restored.stderr
    assert "3 runs (3 in flight)" in restored.stdout and ".before-restore-" in restored.stdout
    [aside] = [p for p in engine.sqlite_dir.glob("engine.db.before-restore-*") if not p.name.endswith(("-wal", "-shm"))]
    assert {r[0] for r in _rows(aside, "SELECT status FROM runs WHERE run_id IN (?, ?)", waiting, calling)} == \
        {"Completed"}                                  # the changed database is kept, intact

    engine.start()                                     # same port and --sqlite-dir: the restored state
    assert engine.get(f"/v1/runs/{waiting}").json()["data"]["status"] == "Running"    # waiting again
    send_event(engine, "bk/approve", {"n": 1, "by": "second-approver"})
    assert wait_for_run_status(engine, waiting, "Completed")["output"] == "second-approver"
    assert wait_for_run_status(engine, calling, "Completed")["output"] == "done"
    assert wait_for_run_status(engine, sleeping, "Completed")["output"] == "rested"
    # Completed in the backup: never again. After the backup: once before and once after the restore.
    assert {s: log.count(s) for s in ("before", "dozing", "first", "slow", "after")} == \
        {"before": 1, "dozing": 1, "first": 1, "slow": 2, "after": 2}
