"""on_event triggers: checked at definition time, the filter on the wire, the input mapping."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from agentcmd import define_workflow, on_event
from agentcmd.errors import WorkflowDefinitionError
from agentcmd.workflows.triggers import TriggerInputError, input_for

LABELED = "event.data.action == 'labeled' && event.data.label.name == 'agent'"


def _event(label: str = "agent", body: str | None = "B") -> dict[str, Any]:
    return {"name": "github/issues", "data": {"action": "labeled", "label": {"name": label},
                                              "issue": {"title": "T", "body": body, "number": 3}}}


async def _body(ctx: Any, step: Any) -> Any:
    return ctx.input


def test_the_filter_becomes_the_trigger_expression_and_describe_lists_the_triggers() -> None:
    wf = define_workflow("triage", on=[on_event("github/issues", filter=LABELED,
                                                input={"title": "event.data.issue.title"}),
                                       on_event("linear/issue")])(_body)
    config = wf.get_config("http://127.0.0.1:4100/api/workflows/inngest").main.model_dump()
    assert config["triggers"] == [{"event": "agentcmd/workflow.triage", "expression": None},
                                  {"event": "github/issues", "expression": LABELED},
                                  {"event": "linear/issue", "expression": None}]
    assert wf.describe()["triggers"] == [
        {"event": "github/issues", "filter": LABELED, "input": {"title": "event.data.issue.title"}},
        {"event": "linear/issue", "filter": None, "input": None}]


def test_the_mapping_builds_the_input_of_the_trigger_that_matched() -> None:
    t = on_event("github/issues", filter=LABELED,
                 input={"title": "event.data.issue.title", "n": "event.data.issue.number",
                        "body": "event.data.issue.body"})
    assert input_for([t], _event()) == {"title": "T", "n": 3, "body": "B"}
    assert input_for([t], _event(body=None)) == {"title": "T", "n": 3, "body": None}
    assert input_for([t], _event(label="bug")) is None
    assert input_for([on_event("github/*")], _event()) == _event()["data"]   # no mapping: the data as is
    with pytest.raises(TriggerInputError, match="'missing'"):
        input_for([on_event("github/issues", input={"x": "event.data.missing"})], _event())


@pytest.mark.parametrize(("make", "message"), [
    (lambda: on_event("github/issues", filter="event.data.action =="), "filter: .* is not a valid CEL expression"),
    (lambda: on_event("github/issues", input={"t": "event.data.(title"}), r"input\['t'\]: .* not a valid CEL"),
    (lambda: on_event("github/issues", input={"t": 3}), "must be a CEL expression"),
    (lambda: on_event("github/issues", filter=""), "filter must be a CEL expression"),
    (lambda: on_event(""), "event name must be a non-empty string"),
    (lambda: on_event("inngest/scheduled.timer"), "the engine's own"),
    (lambda: define_workflow("w", on="github/issues")(_body), "on= takes on_event"),
    (lambda: define_workflow("w", on=[on_event("a/b"), on_event("a/b")])(_body), "listed twice"),
])
def test_bad_triggers_fail_at_definition_time_with_the_fix(make: Any, message: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=message) as err:
        make()
    assert err.value.fix


def test_a_mapping_must_cover_the_required_input_fields() -> None:
    class Input(BaseModel):
        title: str
        body: str = ""

    with pytest.raises(WorkflowDefinitionError, match="leaves the required input field"):
        define_workflow("w", args_schema=Input, on=on_event("github/issues", input={"body": "event.data.x"}))
    define_workflow("w", args_schema=Input, on=on_event("github/issues", input={"title": "event.data.x"}))(_body)
