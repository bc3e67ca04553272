"""Engine-initiated sync with ``-u/--sdk-url``: before ready, and again when an app comes back."""

from __future__ import annotations

import time
from typing import Any

import httpx
import inngest
import pytest

from agentcmd.engine.app import EngineConfig  # noqa: F401  (import check: the engine package imports cleanly)

pytestmark = pytest.mark.slow


def _function(client: Any) -> Any:
    @client.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="t/hello"))
    async def hello(ctx: inngest.Context) -> str:
        return "hi"

    return hello


def test_apps_given_with_sdk_url_are_synced_before_ready(engine_factory: Any, sdk_factory: Any, client_for: Any,
                                                           send_event: Any, runs_for_event: Any,
                                                           wait_for_run_status: Any) -> None:
    for mode in ("dev", "production"):
        engine = engine_factory(mode, start=False)
        client = client_for(engine, app_id=f"synced-{mode}")
        app = sdk_factory(engine, client, [_function(client)], sync=False)
        engine.args += ["--sdk-url", app.url]
        engine.start()
        apps = engine.get("/v1/apps").json()["data"]
        assert [(a["id"], a["error"]) for a in apps] == [(f"synced-{mode}", None)]
        [run_id] = runs_for_event(engine, send_event(engine, "t/hello"))
        assert wait_for_run_status(engine, run_id, "Completed")["output"] == "hi"


def test_an_app_that_is_down_does_not_block_ready_and_is_synced_when_it_comes_back(
        engine_factory: Any, sdk_factory: Any, client_for: Any) -> None:
    engine = engine_factory("dev", start=False)
    client = client_for(engine, app_id="late")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        app_port = s.getsockname()[1]
    url = f"http://127.0.0.1:{app_port}/api/inngest"
    engine.args += ["--sdk-url", url, "--poll-interval", "0.3"]
    started = time.monotonic()
    engine.start()
    assert time.monotonic() - started < 8
    health = httpx.get(engine.url + "/health", timeout=5).json()
    assert health["status"] == "ok" and "unreachable" in str(health["apps"][url])
    # Bring the app up on that port; the engine's poll syncs it.
    import asyncio
    import threading

    import fastapi
    import inngest.fast_api
    import uvicorn
    api = fastapi.FastAPI()
    inngest.fast_api.serve(api, client, [_function(client)])
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=app_port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        apps: list[Any] = []
        while time.monotonic() < deadline:
            apps = engine.get("/v1/apps").json()["data"]
            if apps and apps[0]["error"] is None:
                break
            time.sleep(0.05)
        assert [(a["id"], a["error"]) for a in apps] == [("late", None)]
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_resync_replaces_the_functions_and_removed_ones_stop_matching(
        engine_factory: Any, sdk_factory: Any, client_for: Any, send_event: Any, runs_for_event: Any,
        wait_for_run_status: Any) -> None:
    engine = engine_factory("production")
    client = client_for(engine, app_id="resync")

    @client.create_function(fn_id="kept", trigger=inngest.TriggerEvent(event="t/kept"))
    async def kept(ctx: inngest.Context) -> str:
        return "kept"

    @client.create_function(fn_id="dropped", trigger=inngest.TriggerEvent(event="t/dropped"))
    async def dropped(ctx: inngest.Context) -> str:
        return "dropped"

    first = sdk_factory(engine, client, [kept, dropped])
    slugs = {f["slug"] for f in engine.get("/v1/functions").json()["data"]}
    assert slugs == {"resync-kept", "resync-dropped"}
    first.stop()
    sdk_factory(engine, client, [kept])                      # the new deploy no longer has "dropped"
    assert {f["slug"] for f in engine.get("/v1/functions").json()["data"]} == {"resync-kept"}
    gone = send_event(engine, "t/dropped")
    [run_id] = runs_for_event(engine, send_event(engine, "t/kept"))
    assert wait_for_run_status(engine, run_id, "Completed")["output"] == "kept"
    assert engine.get(f"/v1/events/{gone}/runs").json()["data"] == []
