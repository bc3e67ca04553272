"""A workflow page's live stream tells of a run that starts waiting for a human.

A run that reaches ``step.approval`` keeps its status (Running) and its
phase, so a fingerprint of the runs list alone does not change; yet the
workflow page shows the question's form. The page's version, its JSON
twin's and its stream's, covers the waiting questions too: the stream sends
a new ``version`` as soon as the question is asked. Real dev engine, app
server in-process (``tests/harness/appserver.py``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from tests.harness.appserver import AppServerFactory, app_server, engine_url
from tests.polling import wait_for

__all__ = ["app_server", "engine_url"]

pytestmark = pytest.mark.timeout(90)

GATED = '''
from agentcmd import define_workflow


@define_workflow(id="gated", retries=0)
async def gated(ctx, step):
    await step.cli("hold", "while [ ! -f go ]; do sleep 0.05; done")
    decision = await step.approval("ship", "Ship it?", timeout="10m")
    return decision.approved
'''


@pytest.fixture
def project_workflows() -> dict[str, str]:
    return {"gated.py": GATED}


def test_a_new_waiting_question_changes_the_workflow_pages_version_and_its_stream_says_so(
        app_server: AppServerFactory, project: Path) -> None:
    server = app_server()
    versions: list[str] = []
    stop = threading.Event()

    with httpx.Client(base_url=server.url, timeout=30) as client:
        started = client.post("/api/workflows/gated/runs", json={})
        assert started.status_code == 202, started.text
        run_id = started.json()["data"]["run_id"]
        wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["data"]["status"] == "Running", 30,
                 "the run to start its held command")
        before = client.get("/workflows/gated.json").json()
        assert before["questions"] == []

        def follow() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as reader, \
                    reader.stream("GET", "/live?workflow=gated", headers={"Accept": "text/event-stream"}) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data: "):
                        data = json.loads(line[len("data: "):])
                        if "version" in data:
                            versions.append(data["version"])
                    if stop.is_set():
                        return

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        wait_for(lambda: versions, 20, "the stream's first version")
        assert versions[0] == before["version"]

        (project / "go").touch()   # the command ends; the run asks its question, still Running
        after = wait_for(lambda: (t := client.get("/workflows/gated.json").json())["questions"] and t,
                         30, "the workflow page to list the waiting question")
        assert [q["question"] for q in after["questions"]] == ["ship"]
        assert [r["status"] for r in after["runs"]] == ["Running"]
        assert after["version"] != before["version"], "the page's version must change with a new question"
        wait_for(lambda: after["version"] in versions, 20, "the stream to send the new version",
                 seen=lambda: versions)
        stop.set()
