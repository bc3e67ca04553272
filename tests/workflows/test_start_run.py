"""``POST /api/workflows/{id}/runs`` never answers 202 without a run: against a real engine that has
not synced the app, the app syncs itself and the run starts; an engine that goes away is a clear 503."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.polling import wait_for
from tests.workflows.fakeengine import ServerThread

HELLO = '''
from agentcmd import define_workflow

@define_workflow(id="hello", phases=["greet"], retries=0)
async def hello(ctx, step):
    with step.phase("greet"):
        r = await step.cli("say", "echo hello")
    return r.stdout.strip()
'''


@pytest.fixture
def unsynced(spawn: Any, port: int, project: Any, write_workflow: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A real engine (dev, no discovery, never told about the app) and the real app server pointing at it,
    serving HELLO."""
    from agentcmd.server.app import create_app
    from agentcmd.workflows.context import set_runtime

    write_workflow("hello.py", HELLO)
    engine_url = f"http://127.0.0.1:{port}"
    engine = spawn("engine", "dev", "--host", "127.0.0.1", "--port", str(port), "--no-discovery",
                   "--poll-interval", "0.2")
    wait_for(lambda: httpx.get(f"{engine_url}/health", timeout=2).status_code == 200, 30,
             "the engine to answer /health", engine.output)
    monkeypatch.setenv("INNGEST_DEV", "1")
    monkeypatch.setenv("INNGEST_BASE_URL", engine_url)
    set_runtime(None)
    server = ServerThread(create_app(project, entry_points=False)).start()
    yield server.url, engine_url
    server.stop()


def test_a_start_against_an_engine_that_never_synced_the_app_syncs_it_and_returns_the_run(
        unsynced: tuple[str, str]) -> None:
    app_url, engine_url = unsynced
    assert httpx.get(f"{engine_url}/v1/functions", timeout=5).json()["data"] == []
    started = time.monotonic()
    resp = httpx.post(f"{app_url}/api/workflows/hello/runs", json={"input": {}}, timeout=60)
    assert resp.status_code == 202, resp.text
    data = resp.json()["data"]
    assert data["run_id"] and data["resynced"] is True
    assert time.monotonic() - started < 15
    slugs = [f["slug"] for f in httpx.get(f"{engine_url}/v1/functions", timeout=5).json()["data"]]
    assert slugs == ["agentcmd-hello"]
    run = wait_for(lambda: (r := httpx.get(f"{app_url}/api/runs/{data['run_id']}", timeout=10).json()["data"])
                   ["status"] == "Completed" and r, 30, "the run to complete")
    assert run["output"] == "hello"
    # Exactly one run: the first event did not start a second one later.
    runs = httpx.get(f"{app_url}/api/runs", params={"workflow": "hello"}, timeout=10).json()["data"]
    assert [r["run_id"] for r in runs] == [data["run_id"]]

    # Synced now: the next start is immediate and needs no sync.
    again = httpx.post(f"{app_url}/api/workflows/hello/runs", json={"input": {}}, timeout=60).json()["data"]
    assert again["run_id"] and again["resynced"] is False


def test_the_engine_going_away_after_accepting_the_event_is_a_503_not_a_202_without_a_run(
        write_workflow: Any, stack: Any) -> None:
    """The fake engine accepts the event, then stops answering: the app says what is wrong."""
    write_workflow("hello.py", HELLO)
    s = stack()
    s.engine.app.router.routes = [r for r in s.engine.app.router.routes
                                  if getattr(r, "path", "") not in ("/v1/events/{event_id}/runs", "/v1/functions")]
    s.engine._start_runs = lambda event: None  # type: ignore[method-assign]
    resp = s.app.post("/api/workflows/hello/runs", json={"input": {}})
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["code"] == "sync_failed" and body["hint"] and "sync" in body["error"]
    assert "run_id" not in body
