"""define_workflow's contract: what it builds, and the mistakes it refuses at import time."""

from __future__ import annotations

import datetime
from typing import Any

import pydantic
import pytest

from agentcmd import define_workflow
from agentcmd.errors import InputError
from agentcmd.workflows.define import Workflow, WorkflowDefinitionError
from agentcmd.workflows.durations import parse_duration


async def body(ctx: Any, step: Any) -> None:
    return None


def test_it_builds_an_inngest_function_with_the_default_trigger_and_its_options() -> None:
    import inngest

    wf = define_workflow("fix-tests", "Fix failing tests", phases=["plan", "fix"], retries=2, timeout="30m",
                         concurrency=1, cancel_on=["agentcmd/stop"])(body)
    assert isinstance(wf, inngest.Function) and isinstance(wf, Workflow)
    assert wf.id == "agentcmd-fix-tests" and wf.name == "Fix failing tests"
    config = wf.get_config("http://127.0.0.1:4100/api/workflows/inngest").main.to_dict()
    assert config["triggers"] == [{"event": "agentcmd/workflow.fix-tests", "expression": None}]
    assert config["steps"]["step"]["retries"] == {"attempts": 2}
    assert config["timeouts"] == {"finish": "30m", "start": None}
    assert config["concurrency"][0]["limit"] == 1
    assert config["cancel"][0]["event"] == "agentcmd/stop"
    assert wf.describe()["phases"] == ["plan", "fix"]


def test_a_custom_trigger_is_used() -> None:
    wf = define_workflow("x", trigger="agentcmd/fix-tests")(body)
    assert wf.spec.trigger == "agentcmd/fix-tests"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"id": "bad id!"}, "workflow id 'bad id!' is not valid"),
    ({"id": "x", "phases": ["a", "a"]}, "duplicates"),
    ({"id": "x", "phases": "plan"}, "phases must be a list"),
    ({"id": "x", "phases": ["a/b"]}, "cannot contain '/'"),
    ({"id": "x", "retries": -1}, "retries must be an integer"),
    ({"id": "x", "timeout": "soon"}, "'soon' is not a duration"),
    ({"id": "x", "concurrency": 0}, "concurrency must be a positive integer"),
    ({"id": "x", "workspace": "tmp"}, "workspace must be one of stay, branch, worktree"),
    ({"id": "x", "args_schema": {"type": "object", "oneOf": []}}, "unsupported keyword(s) ['oneOf']"),
    ({"id": "x", "args_schema": {"type": "thing"}}, "unknown type 'thing'"),
    ({"id": "x", "trigger": ""}, "trigger must be an event name"),
])
def test_bad_definitions_are_refused_with_what_and_how(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        define_workflow(**kwargs)(body)
    assert message in info.value.what and info.value.fix


def test_the_body_must_be_async_and_take_ctx_and_step() -> None:
    def sync_body(ctx: Any, step: Any) -> None:
        return None

    async def one_arg(ctx: Any) -> None:
        return None

    with pytest.raises(WorkflowDefinitionError, match="must be an 'async def'"):
        define_workflow("x")(sync_body)  # type: ignore[arg-type]
    with pytest.raises(WorkflowDefinitionError, match=r"exactly \(ctx, step\)"):
        define_workflow("x")(one_arg)  # type: ignore[arg-type]


def test_json_schema_input_lists_every_problem_with_its_path() -> None:
    wf = define_workflow("x", args_schema={
        "type": "object", "required": ["issue"],
        "properties": {"issue": {"type": "string"}, "files": {"type": "array", "items": {"type": "string"}},
                       "level": {"enum": ["low", "high"]}}})(body)
    assert wf.validate_input({"issue": "x", "files": ["a"]}) == {"issue": "x", "files": ["a"]}
    with pytest.raises(InputError) as info:
        wf.validate_input({"files": ["a", 3], "level": "mid"})
    assert info.value.details == [{"path": "issue", "message": "is required"},
                                  {"path": "files[1]", "message": "expected string, got integer"},
                                  {"path": "level", "message": "must be one of ['low', 'high']"}]
    assert info.value.http_status == 422 and info.value.exit_code == 2


def test_pydantic_model_input_is_validated_and_normalised() -> None:
    class Args(pydantic.BaseModel):
        issue: str
        retries: int = 1

    wf = define_workflow("x", args_schema=Args)(body)
    assert wf.validate_input({"issue": "x"}) == {"issue": "x", "retries": 1}
    with pytest.raises(InputError) as info:
        wf.validate_input({"retries": "many"})
    assert {d["path"] for d in info.value.details} == {"issue", "retries"}
    assert wf.describe()["input_schema"]["required"] == ["issue"]


def test_without_a_schema_input_must_still_be_an_object() -> None:
    wf = define_workflow("x")(body)
    assert wf.validate_input(None) == {}
    with pytest.raises(InputError):
        wf.validate_input([1, 2])


@pytest.mark.parametrize(("text", "seconds"), [
    ("5s", 5), ("30m", 1800), ("1h30m", 5400), ("500ms", 0.5), ("2d", 172800), (90, 90), ("1.5h", 5400),
])
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "-5s", "5s5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InputError, match=r"duration|negative"):
        parse_duration(text)
