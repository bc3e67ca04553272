"""The app server's workflow views and the engine dashboard's buttons over HTTP, on a real engine + app.

Uses the session's ``stack`` (``agentcmd engine dev`` syncing ``python -m agentcmd.server``).
"""

from __future__ import annotations

import re

import httpx
import pytest
from tests.engine.dashboard.conftest import Stack
from tests.polling import wait_for

pytestmark = pytest.mark.slow  # real engine (and app server) subprocesses


def csrf(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).text)
    assert match, path
    return match.group(1)


def test_index_and_workflow_twins_agree_with_the_app_api(stack: Stack) -> None:
    index = httpx.get(f"{stack.app}/index.json", timeout=10).json()
    assert [w["id"] for w in index["workflows"]] == ["slow"]
    assert index["workflows"] == httpx.get(f"{stack.app}/api/workflows", timeout=10).json()["data"]
    wf = httpx.get(f"{stack.app}/workflows/slow?format=json", timeout=10).json()
    assert wf["workflow"]["phases"] == ["prepare", "build"]
    page = httpx.get(f"{stack.app}/", timeout=10)
    assert page.status_code == 200 and "Slow build" in page.text and "prepare → build" in page.text


def test_an_unknown_workflow_or_run_is_a_404_with_a_hint(stack: Stack) -> None:
    page = httpx.get(f"{stack.app}/workflows/nope", timeout=10)
    assert page.status_code == 404 and "unknown workflow" in page.text
    twin = httpx.get(f"{stack.app}/runs/01NOPE.json", timeout=10)
    assert twin.status_code == 404 and twin.json()["hint"]


def test_forms_need_the_csrf_token(stack: Stack) -> None:
    with httpx.Client(base_url=stack.app, timeout=30) as client:
        refused = client.post("/workflows/slow/start", data={"input": "{}"})
        assert refused.status_code == 403
        bad = client.post("/workflows/slow/start", data={"input": "[1]", "csrf_token": csrf(client, "/workflows/slow")})
        assert bad.status_code == 422  # validated by the app API before any event is sent


def test_artifacts_cannot_escape_the_artifacts_directory(stack: Stack) -> None:
    for path in ("/runs/01X/artifacts/..%2F..%2Fconfig.json", "/runs/..%2F..%2F/artifacts/x", "/runs/01X/artifacts/x"):
        assert httpx.get(stack.app + path, timeout=10).status_code == 404, path


def test_rerun_and_resync_from_the_engine_dashboard(stack: Stack) -> None:
    gate = stack.tmp / "gate-rerun"
    gate.touch()
    run_id = stack.start_run(gate)
    wait_for(lambda: httpx.get(f"{stack.engine}/v1/runs/{run_id}", timeout=5).json()["data"]["status"] == "Completed",
             30, "the run to complete", stack.logs)
    with httpx.Client(base_url=stack.engine, timeout=30) as client:
        token = csrf(client, f"/runs/{run_id}")
        rerun = client.post(f"/runs/{run_id}/rerun", data={"csrf_token": token})
        assert rerun.status_code == 303, rerun.text
        event_id = rerun.headers["location"].split("/events/")[1].split("?")[0]
        runs = wait_for(lambda: client.get(f"/events/{event_id}.json").json()["runs"], 30, "the rerun", stack.logs)
        assert runs[0]["run_id"] != run_id
        first_event = client.get(f"/runs/{run_id}.json").json()["run"]["events"][0]
        again = client.get(f"/events/{event_id}.json").json()["event"]["body"]
        assert again["data"] == first_event["data"] and again["name"] == first_event["name"]
        resync = client.post("/apps/agentcmd/resync", data={"csrf_token": token})
        assert resync.status_code == 303 and resync.headers["location"] == "/apps?notice=resynced"
        apps = client.get("/apps.json").json()["apps"]
        assert apps[0]["error"] is None and [f["slug"] for f in apps[0]["functions"]] == ["agentcmd-slow"]
        missing = client.post("/apps/nope/resync", data={"csrf_token": token}, headers={"accept": "application/json"})
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_send_event_form_in_dev(stack: Stack) -> None:
    with httpx.Client(base_url=stack.engine, timeout=30) as client:
        assert "Send an event" in client.get("/send").text
        token = csrf(client, "/send")
        bad = client.post("/send", data={"csrf_token": token, "name": "app/x", "data": "[1, 2]"})
        assert bad.status_code == 422 and "must be a JSON object" in bad.text
        assert 'value="app/x"' in bad.text and "[1, 2]</textarea>" in bad.text  # the form keeps what was typed
        sent = client.post("/send", data={"csrf_token": token, "name": "app/hello", "data": '{"a": 1}'},
                           headers={"accept": "application/json"})
        assert sent.status_code == 200
        [event_id] = sent.json()["data"]["ids"]
        assert client.get(f"/events/{event_id}.json").json()["event"]["body"]["data"] == {"a": 1}
