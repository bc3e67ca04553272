"""Retention with the real engine, the official SDK and real SQLite files: the CLI, the REST routes, the dashboard.

"Old" runs: the engine is stopped and every timestamp of its file is moved
40 days back (what 40 days of waiting would leave behind); the run that is
waiting for an event keeps waiting across the cut-off and completes after
the prune, when its event comes.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import inngest
from tests.harness.engine import EngineProc
from tests.harness.processes import run_engine_cli
from tests.polling import wait_for

DAY_MS = 86_400_000


def _functions(client: Any) -> list[Any]:
    @client.create_function(fn_id="quick", trigger=inngest.TriggerEvent(event="t/quick"))
    async def quick(ctx: inngest.Context) -> str:
        await ctx.step.run("one", lambda: "x" * 2000)
        await ctx.step.run("two", lambda: "y" * 2000)
        return "done"

    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="t/wait"))
    async def waiter(ctx: inngest.Context) -> Any:
        await ctx.step.run("before", lambda: "ready")
        got = await ctx.step.wait_for_event("approval", event="t/approved", timeout=datetime.timedelta(days=60))
        return None if got is None else got.data

    return [quick, waiter]


def _start_runs(engine: EngineProc, send_event: Callable[..., str], runs_for_event: Callable[..., list[str]],
                wait_for_run_status: Callable[..., dict[str, Any]], quick: int) -> tuple[list[str], str]:
    done = []
    for i in range(quick):
        [run_id] = runs_for_event(engine, send_event(engine, "t/quick", {"i": i}))
        done.append(run_id)
    [waiting] = runs_for_event(engine, send_event(engine, "t/wait", {}))
    for run_id in done:
        wait_for_run_status(engine, run_id, "Completed")
    wait_for(lambda: len(engine.get(f"/v1/runs/{waiting}/steps").json()["data"]) == 1, what="the waiter's first step")
    wait_for(lambda: engine.get(f"/v1/runs/{waiting}").json()["data"]["status"] == "Running", what="waiter running")
    return done, waiting


def _age(db: Path, ms: int) -> None:
    """Every timestamp of the stopped engine's file ``ms`` earlier: as if it all happened that long ago."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET created_at=created_at-?1, started_at=started_at-?1, ended_at=ended_at-?1", (ms,))
        conn.execute("UPDATE steps SET started_at=started_at-?1, ended_at=ended_at-?1", (ms,))
        conn.execute("UPDATE history SET at=at-?1", (ms,))
        conn.execute("UPDATE events SET received_at=received_at-?1, ts=ts-?1", (ms,))
    conn.close()


def _rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_prune_with_the_engine_stopped_keeps_the_waiting_run_which_then_completes(
        engine_factory: Any, client_for: Any, sdk_factory: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any) -> None:
    engine = engine_factory("production")
    sdk_factory(engine, client_for(engine), _functions(client_for(engine)))
    done, waiting = _start_runs(engine, send_event, runs_for_event, wait_for_run_status, quick=20)
    assert engine.stop() == 0
    assert engine.sqlite_dir is not None
    db = engine.sqlite_dir / "engine.db"
    _age(db, 40 * DAY_MS)
    env = {"AGENTCMD_HOME": engine.env["AGENTCMD_HOME"]}
    args = ("engine", "prune", "--older-than", "30d", "--sqlite-dir", str(engine.sqlite_dir))

    dry = run_engine_cli(*args, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: nothing changed" in dry.stdout and "would remove: 20 finished runs" in dry.stdout, dry.stdout
    assert "no engine is using it" in dry.stdout
    assert len(_rows(db, "SELECT run_id FROM runs")) == 21            # nothing changed

    real = run_engine_cli(*args, "--json", env=env)
    assert real.returncode == 0, real.stderr
    report = json.loads(real.stdout)
    assert report["removed"]["runs"] == 20 and report["removed"]["steps"] == 40
    assert report["removed"]["events"] >= 40              # each run's event and its inngest/function.finished
    assert report["auto_vacuum"] == "incremental" and report["pages_freed"] > 0
    assert report["bytes_freed"] > 0 and report["bytes_after"] < report["bytes_before"]
    assert [r[0] for r in _rows(db, "SELECT run_id FROM runs")] == [waiting]
    marks = ",".join("?" * len(done))
    for table in ("steps", "history", "queue"):
        assert _rows(db, f"SELECT COUNT(*) FROM {table} WHERE run_id IN ({marks})", *done) == [(0,)], table
    assert _rows(db, "SELECT COUNT(*) FROM pauses WHERE run_id=?", waiting) == [(1,)]

    # Again: nothing left to remove. Then the engine comes back and the kept run goes on.
    again = run_engine_cli(*args, env=env)
    assert again.returncode == 0 and "removed: nothing" in again.stdout, again.stdout
    engine.start()
    send_event(engine, "t/approved", {"by": "ops"})
    assert wait_for_run_status(engine, waiting, "Completed")["output"] == {"by": "ops"}


def test_prune_asks_the_running_engine_and_the_storage_routes_need_the_bearer(
        engine_factory: Any, client_for: Any, sdk_factory: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any) -> None:
    engine = engine_factory("production")
    sdk_factory(engine, client_for(engine), _functions(client_for(engine)))
    done, waiting = _start_runs(engine, send_event, runs_for_event, wait_for_run_status, quick=5)

    # REST auth: no bearer, no answer (and nothing pruned); the bearer gets the size and the oldest run.
    assert httpx.get(engine.url + "/v1/storage", timeout=5).status_code == 401
    refused = httpx.post(engine.url + "/v1/storage/prune", json={"older_than": "1s"}, timeout=5)
    assert refused.status_code == 401
    assert httpx.get(engine.url + "/v1/storage", headers={"Authorization": "Bearer signkey-prod-00"},
                     timeout=5).status_code == 401
    storage = engine.get("/v1/storage").json()["data"]
    assert storage["runs"] == 6 and storage["oldest_run"]["run_id"] == min([*done, waiting])
    assert storage["retention"] == "30d" and storage["auto_vacuum"] == "incremental"
    assert storage["size_bytes"] > 0 and storage["path"] == str(engine.sqlite_dir / "engine.db")
    bad = httpx.post(engine.url + "/v1/storage/prune", json={"older_than": "soon"}, headers=engine.headers, timeout=5)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_prune", bad.text

    # Every quick run ended more than a second ago (the engine's clock), the waiter started before them all.
    ended = max(engine.get(f"/v1/runs/{r}").json()["data"]["ended_at"] for r in done)
    ended_ms = datetime.datetime.fromisoformat(ended.replace("Z", "+00:00")).timestamp() * 1000
    wait_for(lambda: time.time() * 1000 - ended_ms > 1500, what="the runs to be older than a second")
    env = {"AGENTCMD_HOME": engine.env["AGENTCMD_HOME"], "AGENTCMD_ENGINE_URL": engine.url,
           "INNGEST_SIGNING_KEY": engine.signing_key}
    args = ("engine", "prune", "--older-than", "1s", "--sqlite-dir", str(engine.sqlite_dir))
    dry = run_engine_cli(*args, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would remove: 5 finished runs" in dry.stdout and f"the running engine at {engine.url}" in dry.stdout
    assert engine.get("/v1/storage").json()["data"]["runs"] == 6
    real = run_engine_cli(*args, env=env)
    assert real.returncode == 0, real.stderr
    assert "removed: 5 finished runs, 10 step results" in real.stdout, real.stdout
    assert [r["run_id"] for r in engine.get("/v1/runs").json()["data"]] == [waiting]
    for run_id in done:
        assert engine.get(f"/v1/runs/{run_id}").status_code == 404
    after = engine.get("/v1/storage").json()["data"]
    assert after["runs"] == 1 and after["oldest_run"]["run_id"] == waiting
    assert after["last_prune"]["removed"]["runs"] == 5

    # The dashboard shows the same (loopback production engine: no login).
    page = httpx.get(engine.url + "/apps", timeout=5).text
    assert 'data-testid="storage"' in page and waiting in page

    # Without the engine's URL the command refuses rather than touch a file an engine holds.
    lost = run_engine_cli(*args, env={**env, "AGENTCMD_ENGINE_URL": "http://127.0.0.1:9"})
    assert lost.returncode == 3, lost.stdout + lost.stderr
    assert "an engine is using" in lost.stderr and "could not be asked" in lost.stderr

    send_event(engine, "t/approved", {"by": "ops"})
    assert wait_for_run_status(engine, waiting, "Completed")["output"] == {"by": "ops"}


def test_the_retention_flag_is_checked_before_the_engine_starts(tmp_path: Path) -> None:
    bad = run_engine_cli("engine", "dev", "--retention", "soon", env={"AGENTCMD_HOME": str(tmp_path)})
    assert bad.returncode == 2
    assert "run retention (--retention)" in bad.stderr and "forever" in bad.stderr
    env_bad = run_engine_cli("engine", "dev", env={"AGENTCMD_HOME": str(tmp_path), "AGENTCMD_ENGINE_RETENTION": "1y"})
    assert env_bad.returncode == 2 and "AGENTCMD_ENGINE_RETENTION" in env_bad.stderr
    no_age = run_engine_cli("engine", "prune", "--older-than", "forever", "--sqlite-dir", str(tmp_path),
                            env={"AGENTCMD_HOME": str(tmp_path)})
    assert no_age.returncode == 2 and "--older-than" in no_age.stderr
    missing = run_engine_cli("engine", "prune", "--sqlite-dir", str(tmp_path / "nowhere"),
                             env={"AGENTCMD_HOME": str(tmp_path)})
    assert missing.returncode == 1 and "no engine database at" in missing.stderr
