"""``step.approval`` / ``step.ask`` in the real app server, driven by the test engine (``fakeengine.Driver``).

What the end-to-end tests cannot see from outside the app server's process:
the ``waiting`` run event is published once per question, when its record
is first written (not on the body's replays, not when the record step runs
again), and the memoised values the body gets back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcmd.workflows import questions, runevents
from agentcmd.workflows.questions import ANSWER_EVENT

TWO_QUESTIONS = '''
from agentcmd import define_workflow


@define_workflow(id="two", retries=0)
async def two(ctx, step):
    first = await step.approval("first", "Go?")
    size = await step.ask("size", "How big?", schema={"type": "integer", "minimum": 1}, timeout="5m")
    await step.run("after", lambda: None)
    return {"first": first.to_json(), "size": size}
'''


def _answer(run_id: str, question: str, decision: str, answer: Any = None) -> dict[str, Any]:
    return {"name": ANSWER_EVENT, "id": "e-" + question, "ts": 0, "user": {},
            "data": {"run_id": run_id, "question": question, "decision": decision, "answer": answer,
                     "comment": "ok", "by": "token", "answered_at": "2026-01-01T00:00:00.000Z"}}


class InOrder(dict[str, Any]):
    """The driver's ``events``: both waits are for the same event name, so answer them in turn."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        super().__init__()
        self.answers = answers

    def __bool__(self) -> bool:   # the driver reads ``events or {}``
        return True

    def get(self, name: str, default: Any = None) -> Any:
        assert name == ANSWER_EVENT
        return self.answers.pop(0)


@pytest.fixture
def published() -> Any:
    seen: list[runevents.RunEvent] = []
    unsubscribe = runevents.subscribe(seen.append)
    yield seen
    unsubscribe()


def test_waiting_is_published_once_per_question_and_answers_come_back_typed(
        app_server: Any, write_workflow: Any, published: list[runevents.RunEvent], agentcmd_home: Path) -> None:
    write_workflow("two.py", TWO_QUESTIONS)
    srv = app_server()
    run_id = "run-two-questions"
    answers = InOrder([_answer(run_id, "first", "approved"), _answer(run_id, "size", "answered", 3)])
    result = srv.driver.run("two", {}, run_id=run_id, events=answers)
    assert result.status == "Completed", result.calls[-2:]
    assert result.output == {"first": {"approved": True, "decision": "approved", "by": "token",
                                       "at": "2026-01-01T00:00:00.000Z", "comment": "ok"}, "size": 3}
    waiting = [e for e in published if e.run_id == run_id]
    assert [(e.kind, e.workflow_id, e.detail) for e in waiting] == [
        ("waiting", "two", {"question": "first", "kind": "approval", "message": "Go?"}),
        ("waiting", "two", {"question": "size", "kind": "ask", "message": "How big?"})]
    recorded = questions.list_for(run_id, agentcmd_home / "data")
    assert [(q["question"], q["kind"], q["schema"]) for q in recorded] == [
        ("first", "approval", {}), ("size", "ask", {"type": "integer", "minimum": 1})]


def test_a_record_written_again_keeps_the_first_and_tells_nobody(tmp_path: Path) -> None:
    record = {"run_id": "r1", "question": "phase/q", "kind": "approval", "message": "m", "schema": {},
              "asked_at": "a", "expires_at": "2999-01-01T00:00:00Z", "answer": None}
    assert questions.create_record(tmp_path, record) == (record, True)
    assert questions.create_record(tmp_path, {**record, "asked_at": "b"}) == (record, False)
    assert [p.name for p in (tmp_path / "runs" / "r1" / "questions").iterdir()] == ["phase%2Fq.json"]
    assert questions.pending("r1", tmp_path)[0]["question"] == "phase/q"
    assert questions.claim("r1", "phase/q", {"decision": "approved"}, tmp_path)
    assert not questions.claim("r1", "phase/q", {"decision": "rejected"}, tmp_path)
    assert questions.pending("r1", tmp_path) == []
    assert questions.read("r1", "phase/q", tmp_path)["answer"] == {"decision": "approved"}
    questions.release("r1", "phase/q", tmp_path)
    assert questions.claim("r1", "phase/q", {"decision": "rejected"}, tmp_path)
    assert questions.questions_dir(tmp_path, "../etc") is None


def test_the_dsl_names_are_exported_where_define_workflow_is() -> None:
    import inngest

    import agentcmd
    import agentcmd.workflows

    assert agentcmd.Approval is agentcmd.workflows.Approval is questions.Approval
    assert issubclass(agentcmd.QuestionTimedOut, inngest.NonRetriableError)
    assert {"Approval", "QuestionTimedOut"} <= set(agentcmd.__all__)


def test_a_pydantic_schema_is_kept_with_its_references_written_out() -> None:
    from pydantic import BaseModel

    class Owner(BaseModel):
        name: str

    class Plan(BaseModel):
        owner: Owner
        hours: int

    schema, model = questions.schema_of(Plan, "plan")
    assert model is Plan and "$defs" not in str(schema)
    assert questions.problems_of(schema, {"owner": {}, "hours": "x"}) == [
        {"path": "owner.name", "message": "is required"}, {"path": "hours", "message": "expected integer, got string"}]
