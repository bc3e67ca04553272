"""The exception tree keeps what callers and the SDK rely on: builtin bases, names, messages, retries."""

from __future__ import annotations

import inngest
import pytest
from inngest._internal.errors import is_retriable
from inngest._internal.step_lib.base import MemoizedError

from agentcmd.errors import AgentcmdError, StepFailedError, WorkflowDefinitionError
from agentcmd.workflows.agents import UnknownAgentError, get_adapter
from agentcmd.workflows.schema import InputSchema, SchemaDefinitionError
from agentcmd.workflows.steps import (
    AgentFailedError,
    CommandFailedError,
    CommandTimeoutError,
    StepCancelledError,
    StepInterruptedError,
)


def test_an_unusable_schema_is_a_workflow_definition_error_and_still_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown type 'strin'") as info:
        InputSchema({"type": "object", "properties": {"a": {"type": "strin"}}})
    assert isinstance(info.value, SchemaDefinitionError)
    assert isinstance(info.value, WorkflowDefinitionError)
    assert info.value.code == "invalid_args_schema"


@pytest.mark.parametrize("cls", [CommandFailedError, CommandTimeoutError, AgentFailedError, StepInterruptedError])
def test_step_errors_reach_the_sdk_as_before(cls: type[StepFailedError]) -> None:
    err = cls("`ruff` exited with code 1: bad")
    assert isinstance(err, AgentcmdError)
    memo = MemoizedError.from_error(err)   # what the SDK records for a failed step attempt
    assert (memo.name, memo.message) == (cls.__name__, "`ruff` exited with code 1: bad")
    assert is_retriable(err)


def test_a_cancelled_step_stays_the_sdks_non_retriable_error() -> None:
    err = StepCancelledError("step 'x' was cancelled with its run")
    assert isinstance(err, inngest.NonRetriableError) and not isinstance(err, AgentcmdError)
    assert not is_retriable(err)


def test_an_unknown_agent_keeps_its_code_and_exit_code() -> None:
    with pytest.raises(UnknownAgentError) as info:
        get_adapter("nope")
    assert (info.value.code, info.value.exit_code) == ("unknown_agent", 2)
    assert info.value.fix is not None and "use one of" in info.value.fix
