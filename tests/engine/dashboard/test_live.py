"""The dashboard's live streams (server-sent events): versions on change, ``end``, auth, shutdown.

The run stream is watched on a real ``agentcmd engine dev`` driving the real
SDK: a run whose steps wait for gate files, so the test decides when each
step completes. Auth and the pages' ``data-live`` use the store-backed
dashboard of ``conftest.py`` (seeded rows, no engine).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest
from tests.engine.dashboard.conftest import TOKEN, DashboardFactory
from tests.engine.dashboard.seeder import Seeder
from tests.engine.dashboard.ssereader import SseReader
from tests.engine.dashboard.test_auth_http import CONFIGS
from tests.harness.engine import EngineProc, SdkApp, client_for, runs_for_event, send_event
from tests.polling import wait_for

from agentcmd.engine.dashboard.live import FALLBACK_S


def _gated(client: Any) -> Any:
    @client.create_function(fn_id="gated", trigger=inngest.TriggerEvent(event="live/go"), retries=0)
    async def gated(ctx: inngest.Context) -> str:
        async def first() -> str:
            return "one"

        def waiter(gate: Path) -> Callable[[], Any]:
            async def wait() -> str:
                deadline = time.monotonic() + 60
                while not gate.exists() and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                return gate.name
            return wait

        await ctx.step.run("first", first)
        await ctx.step.run("second", waiter(Path(ctx.event.data["gate1"])))
        await ctx.step.run("third", waiter(Path(ctx.event.data["gate2"])))
        return "done"

    return gated


def _twin(engine: EngineProc, run_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{engine.url}/runs/{run_id}.json", timeout=5).json())


def _versions(reader: SseReader) -> list[str]:
    return [m["version"] for m in reader.events("version")]


@pytest.mark.slow
def test_a_run_stream_sends_a_version_per_step_and_end_when_the_run_ends(
        engine_factory: Callable[..., EngineProc], sdk_factory: Callable[..., SdkApp], tmp_path: Path) -> None:
    engine = engine_factory("dev")
    sdk_factory(engine, client_for(engine, "live"), [_gated(client_for(engine, "live"))])
    gate1, gate2 = tmp_path / "gate1", tmp_path / "gate2"
    run_id = runs_for_event(engine, send_event(engine, "live/go", {"gate1": str(gate1), "gate2": str(gate2)}))[0]
    # "second" is running: one step done, a call in flight.
    before = wait_for(lambda: (t := _twin(engine, run_id)) and len(t["steps"]) == 1
                      and [w["kind"] for w in t["waits"]] == ["running"] and t, 20, "the second step to run",
                      engine.output)
    page = httpx.get(f"{engine.url}/runs/{run_id}", timeout=5).text
    live = f"/runs/{run_id}/live?v={before['version']}"
    assert f'data-live="{live}"' in page and 'data-testid="running"' in page
    reader = SseReader(engine.url + live)
    try:
        assert reader.status == 200 and reader.headers["content-type"].startswith("text/event-stream")
        # Nothing changes on the page (an event that starts no run is committed meanwhile): nothing is sent.
        send_event(engine, "live/unrelated")
        time.sleep(1.0)   # an observation window: asserting that nothing arrives needs one
        assert reader.messages == [] and not reader.ended.is_set()

        gate1.touch()
        opened = time.monotonic()
        wait_for(lambda: _versions(reader), 10, "a version after the second step", engine.output)
        # Woken by the engine's notifier, not by the fallback look.
        assert reader.arrived[0] - opened < min(3.0, FALLBACK_S / 2)
        during = wait_for(lambda: (t := _twin(engine, run_id)) and len(t["steps"]) == 2
                          and t["version"] in _versions(reader) and t, 10, "the stream to show the twin's version")
        assert during["run"]["summary"]["status"] == "Running" and not reader.events("end")

        gate2.touch()
        assert reader.ended.wait(20), reader.messages
        final = _twin(engine, run_id)
        assert final["run"]["summary"]["status"] == "Completed"
        assert reader.messages[-1] == ("end", {"version": final["version"]})
        assert _versions(reader)[-1] == final["version"]
        assert len(set(_versions(reader))) == len(_versions(reader))   # each version once
        # The final page stops asking for updates.
        assert "data-live" not in httpx.get(f"{engine.url}/runs/{run_id}", timeout=5).text
    finally:
        reader.close()


@pytest.mark.slow
def test_open_streams_end_when_the_engine_shuts_down(engine_factory: Callable[..., EngineProc]) -> None:
    engine = engine_factory("dev")   # --grace 3: uvicorn would wait up to 8 s for open connections
    readers = [SseReader(f"{engine.url}{path}") for path in ("/runs/live", "/runs/live?status=Running")]
    try:
        wait_for(lambda: all(r.status == 200 for r in readers), 5, "the streams to open")
        started = time.monotonic()
        assert engine.stop(15) == 0, engine.output()
        took = time.monotonic() - started
        assert all(r.ended.wait(1) for r in readers)
        assert took < 4, f"the engine took {took:.1f} s to stop with streams open"
    finally:
        for r in readers:
            r.close()


# -- auth and pages, on the store-backed dashboard -----------------------------------------------------

@pytest.fixture
def ids(seed: Seeder) -> dict[str, str]:
    seed.app()
    slug = seed.function()
    run = seed.run(status="Running")
    seed.in_flight(run, int(time.time() * 1000) - 5000)
    return {"run": run, "slug": slug, "done": seed.run(status="Completed")}


LIVE = ["/runs/live", "/runs/live?status=Running&function={slug}", "/runs/{run}/live", "/functions/{slug}/live"]


@pytest.mark.parametrize("config", list(CONFIGS))
def test_streams_follow_the_pages_auth(config: str, dashboard: DashboardFactory, ids: dict[str, str]) -> None:
    mode, host, dashboard_auth, locked = CONFIGS[config]
    base = dashboard(mode, host, dashboard_auth)
    for path in (p.format(**ids) for p in LIVE):
        reader = SseReader(base + path)
        try:
            if locked:
                assert reader.status == 401, path
                assert reader.ended.wait(5) and reader.messages == []
            else:
                assert reader.status == 200 and reader.headers["content-type"].startswith("text/event-stream"), path
        finally:
            reader.close()
    if locked:
        with httpx.Client(base_url=base) as user:
            assert user.post("/login", data={"token": TOKEN, "next": "/"}).status_code == 303
            for path in (p.format(**ids) for p in LIVE):
                reader = SseReader(base + path, cookies=user.cookies)
                try:
                    assert reader.status == 200, path
                finally:
                    reader.close()


def test_bad_stream_addresses_are_clear_errors(dashboard: DashboardFactory, ids: dict[str, str]) -> None:
    base = dashboard()
    unknown = httpx.get(f"{base}/runs/01NOPE/live", timeout=5)
    assert unknown.status_code == 404 and unknown.json()["hint"]
    assert httpx.get(f"{base}/functions/nope/live", timeout=5).status_code == 404
    bad = httpx.get(f"{base}/runs/live?status=Sleeping", timeout=5)
    assert bad.status_code == 422 and "unknown status" in bad.json()["error"]


def test_a_finished_run_stream_ends_at_once_and_a_running_one_stays_quiet(dashboard: DashboardFactory,
                                                                         ids: dict[str, str]) -> None:
    base = dashboard()
    done = SseReader(f"{base}/runs/{ids['done']}/live")
    try:
        assert done.ended.wait(5)
        assert [event for event, _ in done.messages] == ["version", "end"]
        assert done.messages[0][1]["version"] == httpx.get(f"{base}/runs/{ids['done']}.json").json()["version"]
    finally:
        done.close()
    version = httpx.get(f"{base}/runs/{ids['run']}.json").json()["version"]
    running = SseReader(f"{base}/runs/{ids['run']}/live?v={version}")
    try:
        time.sleep(1.5)   # an observation window: more than one look of a store-only dashboard (1 s)
        assert running.messages == [] and not running.ended.is_set()
    finally:
        running.close()


def test_pages_carry_their_stream_and_the_run_page_links_the_apps_run(dashboard: DashboardFactory, seed: Seeder,
                                                                      ids: dict[str, str]) -> None:
    base = dashboard()
    run = httpx.get(f"{base}/runs/{ids['run']}", timeout=5).text
    assert f'data-live="/runs/{ids["run"]}/live?v=' in run and 'data-poll="/runs/' in run
    assert f'href="http://127.0.0.1:9/runs/{ids["run"]}"' in run          # the app's run page: the transcript
    assert "running for <span" in run
    assert "data-live" not in httpx.get(f"{base}/runs/{ids['done']}", timeout=5).text
    assert 'data-live="/runs/live?status=Running&amp;v=' in httpx.get(f"{base}/runs?status=Running").text
    assert f'data-live="/functions/{ids["slug"]}/live?v=' in httpx.get(f"{base}/functions/{ids['slug']}").text
    # An app that is not an agentcmd app server has no run pages: no link.
    seed.app("plain", url="http://127.0.0.1:9/api/inngest")
    seed.function("plain-fn", app_id="plain")
    other = seed.run("plain-fn", app_id="plain", status="Running")
    assert "app-run-link" not in httpx.get(f"{base}/runs/{other}", timeout=5).text
