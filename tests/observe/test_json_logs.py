"""``--log-format json``: every line of ``agentcmd dev`` is a JSON object, and lines about a run carry its ids.

The engine (an SDK call that failed) and the app server (a workflow step's
own ``logging`` call) each write JSON with ``run_id``/``step_id`` fields; the
supervisor passes their objects through with ``source``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.keys import app_headers
from tests.harness.processes import Spawned, free_ports
from tests.polling import wait_for

from agentcmd.observe import runlog
from agentcmd.supervisor.logs import LogSink

LOGGING = '''
import logging

from agentcmd import define_workflow

log = logging.getLogger("tests.jsonlogs")


@define_workflow(id="talky", retries=0)
async def talky(ctx, step):
    def say():
        log.warning("inside the say step")
        return "said"

    await step.run("say", say)
    await step.run("boom", lambda: 1 / 0)
'''


@pytest.fixture
def project_workflows() -> dict[str, str]:
    return {"talky.py": LOGGING}


def test_dev_with_json_logs_tags_run_lines_with_run_and_step_ids(spawn: Callable[..., Spawned],
                                                                  project: Path) -> None:
    port, engine_port = free_ports(2)
    child = spawn("dev", "--port", str(port), "--engine-port", str(engine_port), "--project", str(project),
                  "--log-format", "json")
    wait_for(lambda: "ready in " in child.output(), 60, "agentcmd dev to be ready", child.output, [child])
    url = f"http://127.0.0.1:{port}"
    resp = httpx.post(f"{url}/api/workflows/talky/runs", json={}, timeout=15, headers=app_headers())
    assert resp.status_code in (200, 201, 202), resp.text
    run_id = str(resp.json()["data"]["run_id"])

    def records() -> list[dict[str, Any]]:
        return [json.loads(line) for line in child.output().splitlines() if line.strip()]

    def about_run() -> list[dict[str, Any]]:
        return [r for r in records() if r.get("run_id") == run_id]

    wait_for(lambda: {r.get("source") for r in about_run()} >= {"engine", "app"}, 60,
             "lines about the run from both the engine and the app", child.output)
    said = [r for r in about_run() if r.get("message") == "inside the say step"]
    assert said and said[0]["source"] == "app" and said[0]["level"] == "warning", about_run()
    assert said[0]["logger"] == "tests.jsonlogs" and said[0]["step_id"] == "say", said
    failed = [r for r in about_run() if r["source"] == "engine" and "failed" in r.get("message", "")]
    assert failed, about_run()
    assert all(isinstance(r, dict) and "source" in r for r in records())   # every line parsed as an object
    assert "/e/" not in child.output()     # no HTTP client logs a URL holding an event key


def test_the_filter_and_formatter_in_process() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(runlog.JsonFormatter())
    handler.addFilter(runlog.RunContextFilter())
    log = logging.getLogger("tests.observe.runlog")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("before any run")
        runlog.bind("01RUN", "step")          # a discovery call: no step yet
        log.warning("discovering")
        runlog.bind("01RUN", "abc123")
        log.warning("in a step %s", "x")
        runlog.bind(None)
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "run_id" not in lines[0]
    assert lines[1]["run_id"] == "01RUN" and "step_id" not in lines[1]
    assert lines[2] == {**lines[2], "run_id": "01RUN", "step_id": "abc123", "message": "in a step x",
                        "level": "warning", "logger": "tests.observe.runlog"}


def test_the_supervisor_passes_a_childs_json_through() -> None:
    out = io.StringIO()
    sink = LogSink("json", out)
    sink.child_line("engine", json.dumps({"ts": "x", "level": "info", "message": "m", "run_id": "01R"}))
    sink.child_line("app", "not json {")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["source"] == "engine" and first["run_id"] == "01R" and first["ts"] != "x"
    assert second == {**second, "source": "app", "message": "not json {"}
