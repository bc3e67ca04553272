"""The app API: workflows, runs started through the SDK client, runs read from the engine, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import escape
from tests.harness.e2e import alive

from agentcmd.server.engine import EngineRestClient
from agentcmd.signing import hash_signing_key

HELLO = '''
from agentcmd import define_workflow

@define_workflow(id="hello", name="Say hello", phases=["greet", "check"], retries=0,
                 args_schema={"type": "object", "properties": {"who": {"type": "string", "minLength": 1},
                                                             "times": {"type": "integer", "minimum": 1}},
                              "required": ["who"], "additionalProperties": False})
async def hello(ctx, step):
    with step.phase("greet"):
        r = await step.cli("say", f"echo hello {ctx.input['who']}")
    with step.phase("check"):
        await step.run("count", lambda: len(r.stdout))
    return {"said": r.stdout.strip()}
'''


def test_workflows_are_listed_with_id_name_phases_trigger_and_broken_files_reported(
        stack: Any, write_workflow: Any) -> None:
    write_workflow("hello.py", HELLO)
    write_workflow("broken.py", "x = 1\nraise RuntimeError('boom at import')\n")
    s = stack()
    body = s.app.get("/api/workflows").json()
    [wf] = body["data"]
    assert (wf["id"], wf["name"], wf["phases"], wf["trigger"]) == (
        "hello", "Say hello", ["greet", "check"], "agentcmd/workflow.hello")
    [err] = body["errors"]
    assert err["source"].endswith("broken.py") and err["line"] == 2 and "boom at import" in err["error"]
    assert s.app.get("/health").json()["load_errors"] == 1


def test_a_run_started_through_the_api_is_listed_with_status_phase_steps_and_output(
        stack: Any, write_workflow: Any, wait_until: Any) -> None:
    write_workflow("hello.py", HELLO)
    s = stack()
    resp = s.app.post("/api/workflows/hello/runs", json={"input": {"who": "world"}})
    assert resp.status_code == 202, resp.text
    started = resp.json()["data"]
    assert started["event_id"] and started["run_id"], started
    run = wait_until(lambda: (r := s.app.get(f"/api/runs/{started['run_id']}").json()["data"])["status"]
                     == "Completed" and r, 20, "run completed")
    assert run["output"] == {"said": "hello world"}
    assert run["workflow"] == "hello" and run["phase"] == "check"
    assert [(st["phase"], st["id"], st["status"]) for st in run["steps"]] == [
        ("greet", "say", "Completed"), ("check", "count", "Completed")]
    listed = s.app.get("/api/runs", params={"workflow": "hello"}).json()["data"]
    assert [r["run_id"] for r in listed] == [started["run_id"]]
    assert listed[0]["steps"][0]["output"]["stdout"] == "hello world\n"


def test_bad_input_is_refused_with_every_problem_and_nothing_is_sent(stack: Any, write_workflow: Any) -> None:
    write_workflow("hello.py", HELLO)
    s = stack()
    resp = s.app.post("/api/workflows/hello/runs", json={"input": {"times": 0, "extra": True}})
    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "invalid_input" and body["hint"]
    assert {(d["path"], d["message"]) for d in body["details"]} == {
        ("who", "is required"), ("times", "must be >= 1"), ("extra", "is not an allowed property")}
    assert s.engine.events == []


def test_unknown_workflow_and_run_are_404_json_errors(stack: Any) -> None:
    s = stack()
    resp = s.app.post("/api/workflows/nope/runs", json={})
    assert resp.status_code == 404
    assert resp.json()["code"] == "not_found" and "nope" in resp.json()["error"] and resp.json()["hint"]
    resp = s.app.get("/api/runs/run-missing")
    assert resp.status_code == 404 and set(resp.json()) >= {"error", "code", "hint"}
    resp = s.app.post("/api/events", json={"data": {}})
    assert resp.status_code == 422 and resp.json()["details"][0]["path"] == "name"


def test_engine_down_is_a_503_with_a_hint(app_server: Any, write_workflow: Any) -> None:
    write_workflow("hello.py", HELLO)
    server = app_server()
    resp = server.get("/api/runs")
    assert resp.status_code == 503 and "not reachable" in resp.json()["error"]
    resp = server.post("/api/workflows/hello/runs", json={"input": {"who": "x"}})
    assert resp.status_code == 503 and "agentcmd dev" in resp.json()["hint"]


SLOW = '''
from agentcmd import define_workflow

@define_workflow(id="slow", phases=["work"], retries=0)
async def slow(ctx, step):
    with step.phase("work"):
        await step.cli("quick", "true")
        await step.cli("long", "sleep 60 & echo $! > child.pid; echo $$ > shell.pid; wait")
        await step.cli("never", "touch never-ran")
'''


def test_cancelling_a_run_stops_its_command_group_and_records_the_step_cancelled(
        stack: Any, write_workflow: Any, project: Path, wait_until: Any) -> None:
    write_workflow("slow.py", SLOW)
    s = stack()
    run_id = s.app.post("/api/workflows/slow/runs", json={}).json()["data"]["run_id"]
    wait_until(lambda: (project / "child.pid").exists() and (project / "child.pid").read_text().strip(), 20,
               "the long command to start")
    child = int((project / "child.pid").read_text())
    assert alive(child)
    resp = s.app.post(f"/api/runs/{run_id}/cancel")
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["status"] == "Cancelled" and resp.json()["data"]["stopped_processes"] == 1
    wait_until(lambda: not alive(child), 10, "the sleeping grandchild to be stopped")
    run = wait_until(lambda: (r := s.app.get(f"/api/runs/{run_id}").json()["data"])["steps"][-1]["status"]
                     == "Cancelled" and r, 10, "the step recorded as cancelled")
    assert [(st["id"], st["status"]) for st in run["steps"]] == [("quick", "Completed"), ("long", "Cancelled")]
    assert run["status"] == "Cancelled" and run["steps"][-1]["phase"] == "work"
    assert not (project / "never-ran").exists()


def test_a_cancel_that_bypasses_the_app_reaches_the_command_through_the_watcher(
        stack: Any, write_workflow: Any, project: Path, wait_until: Any) -> None:
    import httpx

    write_workflow("slow.py", SLOW)
    s = stack()
    s.app.app.state.runtime.cancel_poll_seconds = 0.1
    run_id = s.app.post("/api/workflows/slow/runs", json={}).json()["data"]["run_id"]
    wait_until(lambda: (project / "child.pid").exists() and (project / "child.pid").read_text().strip(), 20,
               "the long command to start")
    child = int((project / "child.pid").read_text())
    httpx.delete(f"{s.engine_url}/v1/runs/{run_id}", timeout=10)  # e.g. a cancel_on event matched
    wait_until(lambda: not alive(child), 10, "the command to be stopped by the watcher")


async def test_the_engine_client_sends_the_hashed_signing_key_as_bearer(stack: Any) -> None:
    s = stack()
    client = EngineRestClient(s.engine_url, signing_key="signkey-prod-abc123")
    try:
        assert await client.list_runs() == ([], None)
    finally:
        await client.aclose()
    assert s.engine.auth_seen[-1] == f"Bearer {hash_signing_key('signkey-prod-abc123')}"  # the raw key stays


DUP = '''
from agentcmd import define_workflow

@define_workflow(id="hello", phases=["{phase}"])
async def hello(ctx, step):
    return 1
'''


def test_load_errors_and_duplicates_are_listed_on_the_index_page_the_api_and_the_cli(
        app_server: Any, write_workflow: Any, cli: Any) -> None:
    first = write_workflow("a_hello.py", DUP.format(phase="original"))
    second = write_workflow("b_hello.py", DUP.format(phase="newcomer"))
    broken = write_workflow("broken.py", "x = 1\ndef broken(:\n")
    s = app_server()
    body = s.get("/api/workflows").json()
    assert [w["source"] for w in body["data"]] == [str(first)]
    errors = {Path(e["source"]).name: e for e in body["errors"]}
    dup = errors["b_hello.py"]
    assert (dup["kind"], dup["line"], dup["workflow_id"], dup["other"]) == ("duplicate_id", 4, "hello", f"{first}:4")
    assert errors["broken.py"]["where"] == f"{broken}:2" and errors["broken.py"]["hint"]
    page = s.get("/")
    assert page.status_code == 200, page.text  # was a 500: the template read a "hint" the errors did not have
    for err in body["errors"]:
        assert escape(err["where"]) in page.text and escape(err["hint"]) in page.text
    assert "2 workflow load errors" in page.text
    assert s.get("/index.json").json()["load_errors"] == body["errors"]
    wf_page = s.get("/workflows/hello")
    assert wf_page.status_code == 200 and escape(f"{second}:4") in wf_page.text
    assert s.get("/workflows/hello.json").json()["load_errors"][0]["source"] == str(second)
    listed = cli("workflows", "list", env={"PORT": s.url.rsplit(":", 1)[1]})
    assert listed.returncode == 1 and "hello  hello  phases=original" in listed.stdout
    assert f"not loaded: {second}:4: duplicate workflow id 'hello': also defined in {first}:4" in listed.stderr
    assert "(1 duplicate workflow id)" in listed.stderr and "fix: give one of them another id" in listed.stderr
