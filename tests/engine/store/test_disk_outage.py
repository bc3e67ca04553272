"""Disk full under a running production engine: 503 for new events, nothing lost, resumes by itself.

The outage is real: the engine process gets a file size limit of one byte
(``RLIMIT_FSIZE`` via ``prlimit``), so every write SQLite makes to its WAL
fails (EFBIG) exactly as on a full disk, while reads keep working. Raising
the limit again is "space returns".
"""

from __future__ import annotations

import asyncio
import datetime
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.polling import wait_for

pytestmark = pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit(2)")


def _set_file_limit(pid: int, limit: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))


def _post(engine: Any, name: str) -> httpx.Response:
    return httpx.post(f"{engine.url}/e/{engine.key}", json={"name": name, "data": {}}, timeout=5)


def test_a_full_disk_refuses_new_events_keeps_runs_and_recovers(
        engine_factory: Callable[..., Any], client_for: Callable[..., Any], sdk_factory: Callable[..., Any],
        step_log: Any, runs_for_event: Callable[..., list[str]],
        wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    import inngest

    steps = step_log()
    engine = engine_factory("production")
    client = client_for(engine)

    @client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event="disk/nap"), retries=0)
    async def napper(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(seconds=2))

        async def after() -> str:
            steps.add("after")
            return "ok"

        return str(await ctx.step.run("after", after))

    gate = threading.Event()

    @client.create_function(fn_id="busy", trigger=inngest.TriggerEvent(event="disk/busy"), retries=0)
    async def busy(ctx: inngest.Context) -> str:
        async def slow() -> str:
            steps.add("slow")
            await asyncio.to_thread(gate.wait, 20)
            return "done"

        return str(await ctx.step.run("slow", slow))

    app = sdk_factory(engine, client, [napper, busy])
    busy_event = _post(engine, "disk/busy").json()["ids"][0]
    [run_b] = runs_for_event(engine, busy_event)
    wait_for(lambda: steps.count("slow") == 1, timeout=10, what="the slow step to start")
    first = _post(engine, "disk/nap")
    assert first.status_code == 200, first.text
    sent_at = time.monotonic()
    [run_a] = runs_for_event(engine, first.json()["ids"][0])
    wait_for_run_status(engine, run_a, "Running")            # the sleep is committed

    assert engine.proc is not None
    _set_file_limit(engine.proc.pid, 1)                      # the disk is full from here on
    try:
        refused = _post(engine, "disk/nap")
        assert refused.status_code == 503, refused.text
        body = refused.json()
        assert body["ids"] == [] and body["code"] == "database_unwritable"
        assert "events not accepted" in body["error"] and "cannot be written" in body["error"]
        assert str(engine.sqlite_dir) in body["error"]
        assert refused.headers["retry-after"] == "5"
        health = httpx.get(engine.url + "/health", timeout=5).json()
        assert health["status"] == "degraded" and "cannot be written" in health["database_error"]
        # Reads still work: the run and its history are there.
        assert engine.get(f"/v1/runs/{run_a}").json()["data"]["status"] == "Running"
        # The dashboard says it on every page (and in the JSON twins).
        page = engine.get("/runs")
        assert page.status_code == 200 and 'data-testid="db-problem"' in page.text
        assert "cannot be written" in engine.get("/runs.json").json()["database_problem"]
        # A re-sync of the app cannot be stored either: the engine answers the SDK 503, not "bad app".
        resync = httpx.put(app.url, json={"url": app.url}, headers={"X-Inngest-Server-Kind": "cloud"}, timeout=10)
        assert '"code": "database_unwritable"' in resync.text and "cannot be written" in resync.text
        # A step that was in the app when the disk filled up: its result cannot be saved.
        gate.set()
        # The sleep comes due during the outage; its wake-up cannot be saved, so the run waits.
        while time.monotonic() < sent_at + 3.5:
            assert httpx.get(engine.url + "/health", timeout=5).json()["status"] == "degraded"
            time.sleep(0.1)
        assert steps.count("after") == 0
    finally:
        _set_file_limit(engine.proc.pid, resource.RLIM_INFINITY)   # space returns

    later = _post(engine, "disk/nap")                        # accepted again (the first write proves it)
    assert later.status_code == 200, later.text
    run = wait_for_run_status(engine, run_a, "Completed", timeout=20)
    assert run["output"] == "ok"
    [run_c] = runs_for_event(engine, later.json()["ids"][0])
    wait_for_run_status(engine, run_c, "Completed", timeout=20)
    assert steps.count("after") == 2                      # run A's step once, run C's once
    # The slow step's first result was lost with the write; it ran again (at least once, as after a crash).
    assert wait_for_run_status(engine, run_b, "Completed", timeout=20)["output"] == "done"
    assert steps.count("slow") == 2
    assert httpx.get(engine.url + "/health", timeout=5).json()["status"] == "ok"
    assert "can be written again" in engine.output()
    assert "database_problem" not in engine.get("/runs.json").json()
