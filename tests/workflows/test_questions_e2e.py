"""Approvals and questions end to end: the real engine (``agentcmd engine dev``), the real app server, the CLI.

``step.approval`` and ``step.ask`` are answered from the app API, from the
workflow views' forms (with their CSRF token, refused without) and from
``agentcmd runs approve|answer``; a second answer is refused
(``already_answered``), an answer to a run that no longer waits too
(``not_waiting``), a bad answer lists every problem (422). Timeouts do what
docs/workflows.md says. Restarts in the middle of a wait are in
``test_questions_restart.py``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.processes import Child, free_ports
from tests.polling import wait_for

from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

pytestmark = pytest.mark.slow

GATE = '''
from agentcmd import define_workflow


@define_workflow(id="gate", retries=0, phases=["check"])
async def gate(ctx, step):
    with step.phase("check"):
        decision = await step.approval("deploy", "Deploy " + ctx.input.get("what", "it") + "?",
                                       timeout=ctx.input.get("timeout", "1h"))
    went_on = await step.run("after", lambda: "went on")
    return {**decision.to_json(), "type": type(decision).__name__, "after": went_on}
'''

ASK = '''
from typing import Literal

from pydantic import BaseModel

from agentcmd import define_workflow


class Plan(BaseModel):
    priority: Literal["low", "high"]
    hours: int
    urgent: bool = False


@define_workflow(id="ask-model", retries=0)
async def ask_model(ctx, step):
    plan = await step.ask("plan", "Plan it?", schema=Plan, timeout=ctx.input.get("timeout", "1h"))
    return {"type": type(plan).__name__, **plan.model_dump()}


SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "minLength": 2},
                                            "count": {"type": "integer", "minimum": 1}},
          "required": ["name", "count"], "additionalProperties": False}


@define_workflow(id="ask-schema", retries=0)
async def ask_schema(ctx, step):
    extra = {"default": ctx.input["default"]} if "default" in ctx.input else {}
    answer = await step.ask("name", "Who?", schema=SCHEMA, timeout=ctx.input.get("timeout", "1h"), **extra)
    return {"answer": answer}
'''

TERMINAL = ("Completed", "Failed", "Cancelled")


@dataclass
class Stack:
    app_url: str
    engine_url: str
    env: dict[str, str]
    data_dir: Path
    children: list[Child]
    app_env: dict[str, str]

    def start(self, workflow: str, data: dict[str, Any] | None = None) -> str:
        resp = httpx.post(f"{self.app_url}/api/workflows/{workflow}/runs", json={"input": data or {}}, timeout=30)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["data"]["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.app_url}/api/runs/{run_id}", timeout=10).json()["data"]
        return data

    def questions(self, run_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = httpx.get(f"{self.app_url}/api/runs/{run_id}/questions",
                                               timeout=10).json()["data"]
        return data

    def waiting(self, run_id: str, count: int = 1) -> list[dict[str, Any]]:
        """The run's waiting questions, once ``count`` of them wait and the engine waits for the answer."""
        found: list[dict[str, Any]] = wait_for(
            lambda: len(qs := [q for q in self.questions(run_id) if q["waiting"]]) >= count and qs, 60,
            f"run {run_id} to ask", self.logs)
        return found

    def end(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        run: dict[str, Any] = wait_for(lambda: (r := self.run(run_id))["status"] in TERMINAL and r, timeout,
                                       f"run {run_id} to end", self.logs)
        return run

    def approve(self, run_id: str, **body: Any) -> httpx.Response:
        return httpx.post(f"{self.app_url}/api/runs/{run_id}/approve", json=body, timeout=30)

    def answer(self, run_id: str, **body: Any) -> httpx.Response:
        return httpx.post(f"{self.app_url}/api/runs/{run_id}/answer", json=body, timeout=30)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agentcmd", *args], capture_output=True, text=True,
                              env=self.env, timeout=60)

    def logs(self) -> str:
        return "\n".join(c.output()[-3000:] for c in self.children)


def start_dev_stack(base: Path, workflows: dict[str, str], app_args: tuple[str, ...] = (),
                    app_extra_env: dict[str, str] | None = None) -> Stack:
    """``agentcmd engine dev`` (in memory) and the app server (dev mode) over a project holding ``workflows``."""
    project, home = base / "project", base / "home"
    (project / ".agentcmd" / "workflows").mkdir(parents=True)
    for name, source in workflows.items():
        (project / ".agentcmd" / "workflows" / name).write_text(source)
    app_port, engine_port = free_ports(2)
    app_url, engine_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{engine_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_"))}
    env.update({"AGENTCMD_HOME": str(home), "PORT": str(app_port)})
    engine = Child([sys.executable, "-m", "agentcmd", "engine", "dev", "--host", "127.0.0.1", "--port",
                    str(engine_port), "--no-discovery", "--poll-interval", "0.2", "-u",
                    f"{app_url}/api/workflows/inngest"], env, base / "engine.log")
    app_env = {**inngest_env(Mode.DEV, engine_url, base=env), **(app_extra_env or {})}
    app = Child([sys.executable, "-m", "agentcmd.server", "--port", str(app_port), "--project", str(project),
                 *app_args], app_env, base / "app.log")
    stack = Stack(app_url, engine_url, env, home / "data", [engine, app], app_env)
    wait_for(lambda: httpx.get(f"{app_url}/health", timeout=5).status_code == 200
             and len(httpx.get(f"{engine_url}/v1/functions", timeout=5).json().get("data") or []) >= len(workflows),
             60, "the engine to sync the app", stack.logs, children=stack.children)
    return stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_dev_stack(tmp_path_factory.mktemp("questions"), {"gate.py": GATE, "ask.py": ASK})
    try:
        yield s
    finally:
        for child in reversed(s.children):
            child.stop()


def hidden_fields(html: str, action_part: str) -> tuple[dict[str, str], str]:
    """(the hidden inputs, CSRF token among them, and the action) of the page's form posting to ``*action_part*``."""
    for form in re.findall(r"<form[^>]*>.*?</form>", html, re.S):
        action = re.search(r'action="([^"]+)"', form)
        if action and action_part in action.group(1):
            hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
            assert "csrf_token" in hidden, form
            return hidden, action.group(1)
    raise AssertionError(f"no form posting to *{action_part}* in the page:\n{html[:3000]}")


def _csrf_and_form(html: str, action_part: str) -> tuple[str, str]:
    hidden, action = hidden_fields(html, action_part)
    return hidden["csrf_token"], action


# Approvals -------------------------------------------------------------------------------------------------
def test_an_approval_from_the_api_says_who_when_and_why_and_the_run_goes_on(stack: Stack) -> None:
    run_id = stack.start("gate", {"what": "v2"})
    [q] = stack.waiting(run_id)
    assert (q["question"], q["kind"], q["message"], q["workflow_id"]) == ("check/deploy", "approval", "Deploy v2?",
                                                                          "gate")
    assert q["answer"] is None and q["expires_at"] > q["asked_at"]
    assert stack.run(run_id)["status"] == "Running"

    resp = stack.approve(run_id, comment="looks good")
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["answer"]["decision"] == "approved"
    run = stack.end(run_id)
    assert run["status"] == "Completed", run
    out = run["output"]
    assert out["type"] == "Approval" and out["after"] == "went on"
    # the wait's result is stored under the question's id: what the app's answer watcher looks for
    assert [(s["name"], s["status"]) for s in run["steps"]][:2] == [("check/question:deploy", "Completed"),
                                                                   ("check/deploy", "Completed")]
    assert (out["approved"], out["decision"], out["by"], out["comment"]) == (True, "approved", "local", "looks good")
    assert out["at"].endswith("Z") and out["at"] >= q["asked_at"]

    second = stack.approve(run_id, approved=False)
    assert second.status_code == 409 and second.json()["code"] == "already_answered", second.text
    assert "already answered" in second.json()["error"]
    [after] = stack.questions(run_id)
    assert after["answer"]["decision"] == "approved" and after["waiting"] is False


def test_the_question_record_is_private_and_the_waiting_question_is_listed(stack: Stack) -> None:
    run_id = stack.start("gate")
    stack.waiting(run_id)
    records = list(stack.data_dir.glob(f"runs/{run_id}/questions/*.json"))
    assert len(records) == 1, list(stack.data_dir.rglob("*"))
    assert stat.S_IMODE(records[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(records[0].parent.stat().st_mode) == 0o700
    record = json.loads(records[0].read_text())
    assert {"run_id", "workflow_id", "question", "kind", "message", "schema", "asked_at", "expires_at",
            "answer"} <= set(record)
    assert stack.approve(run_id).status_code == 200
    assert stack.end(run_id)["status"] == "Completed"


def test_a_rejection_from_the_cli_and_a_second_answer_refused(stack: Stack) -> None:
    run_id = stack.start("gate")
    stack.waiting(run_id)
    out = stack.cli("runs", "approve", run_id, "--reject", "--comment", "not today")
    assert out.returncode == 0, out.stderr
    assert f"run {run_id}: question check/deploy rejected" in out.stdout
    run = stack.end(run_id)
    assert (run["output"]["approved"], run["output"]["decision"], run["output"]["by"],
            run["output"]["comment"]) == (False, "rejected", "cli", "not today")
    again = stack.cli("runs", "approve", run_id)
    assert again.returncode == 1
    assert "already answered" in again.stderr and "fix:" in again.stderr


def test_two_answers_at_once_exactly_one_wins(stack: Stack) -> None:
    run_id = stack.start("gate")
    stack.waiting(run_id)
    barrier = threading.Barrier(4)
    results: list[httpx.Response] = []

    def post(approved: bool) -> None:
        barrier.wait()
        results.append(stack.approve(run_id, approved=approved, question="check/deploy"))

    threads = [threading.Thread(target=post, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409], [r.text for r in results]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"already_answered"}
    winner = next(r for r in results if r.status_code == 200).json()["data"]["answer"]["decision"]
    assert stack.end(run_id)["output"]["decision"] == winner


def test_an_answer_to_a_run_that_ended_is_not_waiting(stack: Stack) -> None:
    run_id = stack.start("gate")
    stack.waiting(run_id)
    assert httpx.post(f"{stack.app_url}/api/runs/{run_id}/cancel", timeout=30).status_code == 200
    stack.end(run_id)
    resp = stack.approve(run_id, question="check/deploy")
    assert resp.status_code == 409 and resp.json()["code"] == "not_waiting", resp.text
    assert "Cancelled" in resp.json()["error"]
    [q] = stack.questions(run_id)
    assert q["waiting"] is False and q["answer"] is None    # nothing was claimed


def test_a_run_cancelled_while_it_waited_asks_again_when_resumed_and_the_answer_reaches_the_new_run(
        stack: Stack) -> None:
    old = stack.start("gate", {"what": "v3"})
    stack.waiting(old)
    assert httpx.post(f"{stack.app_url}/api/runs/{old}/cancel", timeout=30).status_code == 200
    assert stack.end(old)["status"] == "Cancelled"
    resp = httpx.post(f"{stack.app_url}/api/runs/{old}/resume", json={}, timeout=30)
    assert resp.status_code == 201, resp.text
    new = resp.json()["data"]["run_id"]
    [q] = stack.waiting(new)      # the kept "record the question" step is asked again under the new run's id
    assert (q["run_id"], q["question"], q["message"]) == (new, "check/deploy", "Deploy v3?")
    assert stack.approve(new, comment="second time").status_code == 200
    run = stack.end(new)
    assert run["status"] == "Completed", run
    assert (run["output"]["decision"], run["output"]["comment"]) == ("approved", "second time")


def test_unknown_questions_and_wrong_kinds_are_clear(stack: Stack) -> None:
    run_id = stack.start("gate")
    stack.waiting(run_id)
    missing = stack.approve(run_id, question="nope")
    assert missing.status_code == 404 and "check/deploy" in missing.json()["error"]
    wrong = stack.answer(run_id, answer=1)
    assert wrong.status_code == 422 and "approval" in wrong.json()["error"]
    bad = stack.approve(run_id, approved="yes")
    assert bad.status_code == 422 and bad.json()["details"] == [{"path": "approved", "message": "expected boolean"}]
    assert stack.approve(run_id).status_code == 200
    assert stack.end(run_id)["status"] == "Completed"


def test_an_approval_that_times_out_lets_the_run_go_on_and_refuses_a_late_answer(stack: Stack) -> None:
    run_id = stack.start("gate", {"timeout": "1s"})
    run = stack.end(run_id)
    assert run["status"] == "Completed", run
    assert {k: run["output"][k] for k in ("approved", "decision", "by", "at", "comment")} == {
        "approved": False, "decision": "timed_out", "by": None, "at": None, "comment": None}
    late = stack.approve(run_id, question="check/deploy")
    assert late.status_code == 409 and late.json()["code"] == "not_waiting", late.text


# The UI forms ------------------------------------------------------------------------------------------------
def test_the_run_page_form_approves_with_its_csrf_token_and_not_without(stack: Stack) -> None:
    run_id = stack.start("gate", {"what": "the UI"})
    stack.waiting(run_id)
    with httpx.Client(base_url=stack.app_url, timeout=30) as browser:
        page = browser.get(f"/runs/{run_id}")
        assert page.status_code == 200 and "Deploy the UI?" in page.text and "Approve" in page.text
        token, action = _csrf_and_form(page.text, "/approve")
        assert action == f"/runs/{run_id}/questions/check/deploy/approve"
        refused = browser.post(action, data={"decision": "approve", "comment": "x"})
        assert refused.status_code == 403, refused.text
        assert stack.questions(run_id)[0]["waiting"] is True
        sent = browser.post(action, data={"csrf_token": token, "decision": "reject", "comment": "from the page"})
        assert sent.status_code == 303 and sent.headers["location"] == f"/runs/{run_id}?notice=rejected"
    out = stack.end(run_id)["output"]
    assert (out["decision"], out["comment"], out["by"]) == ("rejected", "from the page", "local")


def test_the_workflow_page_shows_the_waiting_question_and_its_form_answers_it(stack: Stack) -> None:
    run_id = stack.start("gate", {"what": "from the workflow page"})
    stack.waiting(run_id)
    with httpx.Client(base_url=stack.app_url, timeout=30) as browser:
        page = browser.get("/workflows/gate")
        assert "Deploy from the workflow page?" in page.text
        hidden, action = hidden_fields(page.text, f"/runs/{run_id}/questions/")
        assert hidden["next"] == "/workflows/gate"
        sent = browser.post(action, data={**hidden, "decision": "approve"})
        assert sent.status_code == 303 and sent.headers["location"].startswith("/workflows/gate?")
        twin = browser.get("/workflows/gate.json").json()
        assert all(q["run_id"] != run_id for q in twin["questions"])
    assert stack.end(run_id)["output"]["decision"] == "approved"


def test_the_ask_form_is_generated_from_the_model_and_a_bad_field_is_422(stack: Stack) -> None:
    run_id = stack.start("ask-model")
    stack.waiting(run_id)
    with httpx.Client(base_url=stack.app_url, timeout=30) as browser:
        page = browser.get(f"/runs/{run_id}")
        token, action = _csrf_and_form(page.text, "/answer")
        form = page.text[page.text.index(action):]
        assert 'name="field.priority"' in form and '<option value="&#34;high&#34;"' in form
        assert 'name="field.hours"' in form and 'type="checkbox" id="q1-3" name="field.urgent"' in form
        bad = browser.post(action, data={"csrf_token": token, "field.priority": '"high"', "field.hours": "lots"})
        assert bad.status_code == 422 and "hours: must be a whole number" in bad.text
        sent = browser.post(action, data={"csrf_token": token, "field.priority": '"high"', "field.hours": "3",
                                          "field.urgent": "true"})
        assert sent.status_code == 303, sent.text
    out = stack.end(run_id)["output"]
    assert out == {"type": "Plan", "priority": "high", "hours": 3, "urgent": True}


# Questions with a schema -----------------------------------------------------------------------------------
def test_ask_with_a_pydantic_model_lists_every_problem_then_returns_the_model(stack: Stack) -> None:
    run_id = stack.start("ask-model")
    [q] = stack.waiting(run_id)
    assert q["kind"] == "ask" and q["schema"]["properties"]["priority"]["enum"] == ["low", "high"]
    bad = stack.answer(run_id, answer={"priority": "urgent", "hours": "x"})
    assert bad.status_code == 422, bad.text
    assert {d["path"] for d in bad.json()["details"]} == {"priority", "hours"}
    assert stack.questions(run_id)[0]["waiting"] is True    # a bad answer claims nothing
    ok = stack.answer(run_id, answer={"priority": "low", "hours": 2})
    assert ok.status_code == 200, ok.text
    assert stack.end(run_id)["output"] == {"type": "Plan", "priority": "low", "hours": 2, "urgent": False}
    again = stack.answer(run_id, answer={"priority": "high", "hours": 1})
    assert again.status_code == 409 and again.json()["code"] == "already_answered"


def test_ask_with_a_json_schema_from_the_cli(stack: Stack) -> None:
    run_id = stack.start("ask-schema")
    stack.waiting(run_id)
    bad = stack.cli("runs", "answer", run_id, "--input", '{"name": "x", "extra": 1}')
    assert bad.returncode == 2, bad.stderr
    assert "name: must be at least 2 characters" in bad.stderr and "count: is required" in bad.stderr
    assert "extra: is not an allowed property" in bad.stderr
    out = stack.cli("runs", "answer", run_id, "--input", '{"name": "ana", "count": 2}')
    assert out.returncode == 0, out.stderr
    assert stack.end(run_id)["output"] == {"answer": {"name": "ana", "count": 2}}


def test_ask_that_times_out_fails_the_run_without_a_default_and_returns_the_default_with_one(stack: Stack) -> None:
    failing = stack.start("ask-schema", {"timeout": "1s"})
    defaulted = stack.start("ask-schema", {"timeout": "1s", "default": {"name": "nobody", "count": 0}})
    run = stack.end(failing)
    assert run["status"] == "Failed", run
    assert "QuestionTimedOut" in json.dumps(run["error"]) or "QuestionTimedOut" in json.dumps(run["output"])
    assert "was not answered within 1s" in json.dumps(run["output"]) + json.dumps(run["error"])
    assert stack.end(defaulted)["output"] == {"answer": {"name": "nobody", "count": 0}}
    late = stack.answer(failing, question="name", answer={"name": "ana", "count": 1})
    assert late.status_code == 409 and late.json()["code"] == "not_waiting"


def test_an_answer_sent_as_soon_as_the_question_is_recorded_still_reaches_the_run(stack: Stack) -> None:
    """The engine sees only events after its wait began; the app resends until the wait took the answer."""
    run_id = stack.start("gate")
    wait_for(lambda: list(stack.data_dir.glob(f"runs/{run_id}/questions/*.json")), 30, "the question record")
    resp = stack.approve(run_id, question="check/deploy")
    assert resp.status_code == 200, resp.text
    started = time.monotonic()
    assert stack.end(run_id, timeout=30)["output"]["decision"] == "approved"
    assert time.monotonic() - started < 15


def test_behind_the_views_login_the_form_needs_a_session_and_the_answer_is_by_token(tmp_path: Path) -> None:
    from tests.harness.keys import APP_SIGNING_KEY

    token = "dashboard-token-for-the-questions-test-0123456789"
    locked = start_dev_stack(tmp_path, {"gate.py": GATE}, ("--dashboard-auth",),
                             {"AGENTCMD_DASHBOARD_TOKEN": token, "INNGEST_SIGNING_KEY": APP_SIGNING_KEY})
    bearer = {"Authorization": f"Bearer {APP_SIGNING_KEY}"}
    try:
        started = httpx.post(f"{locked.app_url}/api/workflows/gate/runs", json={}, headers=bearer, timeout=30)
        run_id = started.json()["data"]["run_id"]
        wait_for(lambda: any(q["waiting"] for q in httpx.get(f"{locked.app_url}/api/runs/{run_id}/questions",
                                                             headers=bearer, timeout=10).json()["data"]),
                 60, "the run to ask", locked.logs)
        assert httpx.post(f"{locked.app_url}/api/runs/{run_id}/approve", json={}, timeout=10).status_code == 401
        action = f"/runs/{run_id}/questions/check/deploy/approve"
        with httpx.Client(base_url=locked.app_url, timeout=30) as browser:
            anonymous = browser.post(action, data={"decision": "approve"})
            assert anonymous.status_code == 401, anonymous.text
            assert browser.post("/login", data={"token": token, "next": "/"}).status_code == 303
            page = browser.get(f"/runs/{run_id}")
            hidden, found = hidden_fields(page.text, "/approve")
            assert found == action
            assert browser.post(action, data={"decision": "approve"}).status_code == 403   # logged in, no token
            sent = browser.post(action, data={**hidden, "decision": "approve", "comment": "logged in"})
            assert sent.status_code == 303, sent.text
        run = wait_for(lambda: (r := httpx.get(f"{locked.app_url}/api/runs/{run_id}", headers=bearer,
                                               timeout=10).json()["data"])["status"] in TERMINAL and r, 60,
                       "the run to end", locked.logs)
        assert (run["output"]["decision"], run["output"]["by"], run["output"]["comment"]) == (
            "approved", "token", "logged in")
    finally:
        for child in reversed(locked.children):
            child.stop()


def test_in_a_real_browser_the_ask_form_answers_and_the_page_shows_the_answer(stack: Stack, page: Any) -> None:
    from playwright.sync_api import expect

    run_id = stack.start("ask-model")
    stack.waiting(run_id)
    page.goto(f"{stack.app_url}/runs/{run_id}")
    form = page.get_by_test_id("ask-form")
    form.get_by_label("priority").select_option("high")
    form.get_by_label("hours").fill("5")
    form.get_by_label("urgent").check()
    form.get_by_role("button", name="Answer").click()
    expect(page.get_by_test_id("question-answer")).to_contain_text("Answered by local", timeout=30_000)
    assert "notice=answered" in page.url
    assert stack.end(run_id)["output"] == {"type": "Plan", "priority": "high", "hours": 5, "urgent": True}
