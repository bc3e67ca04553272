"""``GET /live`` over HTTP: the version events of the workflow views' pages, and who may read them.

The app server runs in-process next to a real dev engine (``tests/harness/appserver.py``).
A stream's first ``version`` event carries the same fingerprint as the page's
JSON twin (so a page rendered with it does not fetch itself again); an
unknown run or workflow is a 404 at once, not a stream that never ends; the
route is a page: behind the views' login when they are locked (an
``EventSource`` gets a 401, not a redirect it cannot follow).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from tests.harness.appserver import TOKEN, AppServerFactory, app_server, engine_url, project_workflows
from tests.polling import wait_for

__all__ = ["app_server", "engine_url", "project_workflows"]

pytestmark = pytest.mark.timeout(60)
EVENT_STREAM = {"Accept": "text/event-stream"}


def first_message(client: httpx.Client, path: str) -> tuple[str, dict[str, Any]]:
    """The first event of the stream at ``path``: (event name, data)."""
    event = "message"
    with client.stream("GET", path, headers=EVENT_STREAM) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                return event, json.loads(line[len("data: "):])
    raise AssertionError(f"{path} ended without an event")


@pytest.mark.parametrize(("path", "twin"), [("/live", "/index.json"),
                                            ("/live?workflow=build", "/workflows/build.json")])
def test_a_list_stream_starts_with_the_version_its_twin_has(app_server: AppServerFactory, path: str,
                                                             twin: str) -> None:
    server = app_server()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        event, data = first_message(client, path)
        assert event == "version"
        assert data["version"] == client.get(twin).json()["version"]


def test_an_unknown_run_or_workflow_is_a_404_not_an_endless_stream(app_server: AppServerFactory) -> None:
    server = app_server()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in ("/live?run=01NOSUCHRUN", "/live?workflow=nosuch"):
            response = client.get(path, headers=EVENT_STREAM)
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"
        both = client.get("/live?run=a&workflow=b", headers=EVENT_STREAM)
        assert both.status_code == 422 and "not both" in both.json()["error"]


def test_the_live_route_needs_the_views_login_when_they_are_locked(app_server: AppServerFactory) -> None:
    server = app_server("production", "0.0.0.0")
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert anonymous.get("/live").status_code == 303  # a page: to the login form
        refused = anonymous.get("/live", headers=EVENT_STREAM)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        page = anonymous.post("/login", data={"token": TOKEN, "next": "/"})
        assert page.status_code == 303
        event, data = first_message(anonymous, "/live?workflow=build")
        assert event == "version" and data["version"]
        html = anonymous.get("/workflows/build").text
        assert 'data-live="/live?workflow=build"' in html


def test_many_pages_following_a_list_cost_one_engine_query_a_second(app_server: AppServerFactory,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from agentcmd.server import api

    asked: list[float] = []
    real = api.list_runs

    async def counting(*args: Any, **kwargs: Any) -> Any:
        asked.append(time.monotonic())
        return await real(*args, **kwargs)

    monkeypatch.setattr(api, "list_runs", counting)
    server = app_server()
    opened = threading.Barrier(6)
    stop = threading.Event()

    def follow() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client, \
                client.stream("GET", "/live", headers=EVENT_STREAM) as response:
            assert response.status_code == 200
            opened.wait()
            for _ in response.iter_lines():
                if stop.is_set():
                    return

    threads = [threading.Thread(target=follow, daemon=True) for _ in range(5)]
    for t in threads:
        t.start()
    opened.wait()
    start = len(asked)
    wait_for(lambda: len(asked) >= start + 3, 20, "three more looks at the runs list", seen=lambda: asked)
    stop.set()
    gaps = [b - a for a, b in zip(asked[start:], asked[start + 1:], strict=False)]
    assert min(gaps) >= 0.8, f"5 pages, yet the engine was asked {len(gaps) + 1} times in {sum(gaps):.2f} s"
