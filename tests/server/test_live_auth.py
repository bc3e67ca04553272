"""A run's live stream on a locked app server (production on 0.0.0.0): the API route takes the bearer,
the views' route a login; both stream unbuffered through every middleware, and events appended from
another thread reach an open stream."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.appserver import SIGNING_KEY, TOKEN, bearer
from tests.harness.servers import LiveServer
from tests.workflows.fakeengine import FakeEngine, ServerThread

from agentcmd.server.access import AppAuth
from agentcmd.workflows import streamlog

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import inngest.fast_api  # noqa: F401

RUN = "run-locked-1"


def sse(resp: httpx.Response) -> Iterator[dict[str, Any]]:
    message: dict[str, Any] = {}
    for line in resp.iter_lines():
        if not line:
            if "data" in message:
                yield message
            message = {}
            continue
        field, _, value = line.partition(": ")
        if field == "data":
            message["data"] = json.loads(value)
        elif field in ("event", "id"):
            message[field] = value


@pytest.fixture
def locked(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FakeEngine, Path]]:
    engine = FakeEngine()
    engine_server = ServerThread(engine.app).start()
    monkeypatch.delenv("INNGEST_DEV", raising=False)
    monkeypatch.setenv("INNGEST_BASE_URL", engine_server.url)
    monkeypatch.setenv("INNGEST_SIGNING_KEY", SIGNING_KEY)
    from agentcmd.server.app import create_app
    from agentcmd.workflows.context import set_runtime

    set_runtime(None)
    streamlog.forget_all()
    auth = AppAuth.build("production", "0.0.0.0", token=TOKEN, signing_key=SIGNING_KEY)
    app = create_app(project, entry_points=False, host="0.0.0.0", auth=auth)
    server = LiveServer(app, "0.0.0.0").start()
    engine.runs[RUN] = {"run_id": RUN, "function_id": "agentcmd-build", "function_slug": "agentcmd-build",
                        "app_id": "agentcmd", "event_id": "e1", "status": "Running", "output": None, "error": None,
                        "run_started_at": None, "ended_at": None, "attempt": 0}
    try:
        yield server.url, engine, app.state.runtime.data_dir
    finally:
        engine.runs[RUN]["status"] = "Completed"
        server.stop()
        engine_server.stop()
        streamlog.forget_all()


def test_the_api_stream_needs_the_bearer_and_the_view_stream_a_login(locked: tuple[str, FakeEngine, Path]) -> None:
    url, engine, data_dir = locked
    log = streamlog.stream_log(data_dir, RUN)
    log.append("compile/say", 0, {"agent": None, "kind": "output", "stream": "stdout", "text": "kept before"})
    for path in (f"/api/runs/{RUN}/stream", f"/api/runs/{RUN}/live"):
        resp = httpx.get(url + path, timeout=10)
        assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer"), path
    with httpx.Client(base_url=url, timeout=10) as anonymous:
        assert anonymous.get(f"/runs/{RUN}/stream.json").status_code == 401
        resp = anonymous.get(f"/runs/{RUN}/live", headers={"Accept": "text/event-stream"})
        assert resp.status_code == 401 and resp.json()["code"] == "unauthorized"   # an EventSource: no redirect
        assert anonymous.get(f"/runs/{RUN}/live").status_code == 303
        assert anonymous.get(f"/runs/{RUN}/live", headers=bearer()).status_code == 303, "the views take a login"
    body = httpx.get(f"{url}/api/runs/{RUN}/stream", headers=bearer(), timeout=10).json()
    assert [e["text"] for e in body["data"]] == ["kept before"]

    with httpx.Client(base_url=url, timeout=30) as user, httpx.Client(base_url=url, timeout=30) as api_client:
        assert user.post("/login", data={"token": TOKEN, "next": "/"}).status_code == 303
        assert user.get(f"/runs/{RUN}/stream.json").json()["data"] == body["data"]
        for client, path, headers in ((user, f"/runs/{RUN}/live", {}),
                                      (api_client, f"/api/runs/{RUN}/live", bearer())):
            with client.stream("GET", path, headers={**headers, "Accept": "text/event-stream"}) as resp:
                assert resp.status_code == 200, path
                messages = sse(resp)
                first = next(messages)
                assert (first["event"], first["data"]["text"]) == ("agent", "kept before")
                # Appended from another thread (not the server's loop) while the stream is open: it arrives
                # at once, before the run ends (unbuffered through Edge, Protect, SdkGuard and Interrupt).
                seen = []
                line = f"live on {path}"
                threading.Thread(target=log.append, args=("compile/say", 0, {"kind": "output", "text": line})
                                 ).start()
                for message in messages:
                    seen.append(message)
                    if message.get("event") == "agent" and message["data"]["text"] == line:
                        break
                assert seen[-1]["data"]["text"] == line and seen[-1]["data"]["seq"] > first["data"]["seq"]
    engine.runs[RUN]["status"] = "Completed"
    with httpx.stream("GET", f"{url}/api/runs/{RUN}/live", headers=bearer(), timeout=30) as resp:
        got = list(sse(resp))
    assert [m["data"]["text"] for m in got if m["event"] == "agent"] == [
        "kept before", f"live on /runs/{RUN}/live", f"live on /api/runs/{RUN}/live"]
    assert got[-1] == {"event": "end", "data": {"status": "Completed"}}
