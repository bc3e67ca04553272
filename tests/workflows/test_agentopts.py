"""Per-step agent options: each option's flags for claude, codex and gemini, and refusals.

A refused option fails the workflow file's import (a load error naming the
file, the step and the option) and, for a body whose agent is only known
when it runs, the step itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcmd.workflows.agentopts import (
    FLAGS,
    PERMISSION_MODES,
    AgentOptions,
    AgentOptionValueError,
    UnsupportedAgentOptionError,
    check_options,
    option_flags,
)
from agentcmd.workflows.define import define_workflow
from agentcmd.workflows.loading import discover


def flags(agent: str, **opts: Any) -> list[str]:
    return option_flags(agent, AgentOptions.build(**opts))


@pytest.mark.parametrize(("agent", "expected"), [
    ("claude", ["--permission-mode", "acceptEdits"]),
    ("codex", ["--sandbox", "workspace-write"]),
    ("gemini", ["--approval-mode", "auto_edit"]),
])
def test_permission_mode_becomes_each_clis_own_flag(agent: str, expected: list[str]) -> None:
    mode = {"claude": "acceptEdits", "codex": "workspace-write", "gemini": "auto_edit"}[agent]
    assert flags(agent, permission_mode=mode) == expected


def test_codex_full_auto_is_its_preset_flag() -> None:
    assert flags("codex", permission_mode="full-auto") == ["--full-auto"]


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_every_mode_of_a_cli_is_accepted_and_another_clis_mode_is_refused(agent: str) -> None:
    for mode in PERMISSION_MODES[agent]:
        check_options(agent, AgentOptions(permission_mode=mode))
    foreign = {"claude": "yolo", "codex": "acceptEdits", "gemini": "bypassPermissions"}[agent]
    with pytest.raises(AgentOptionValueError, match=f"not one of {agent}'s modes"):
        check_options(agent, AgentOptions(permission_mode=foreign))


def test_tools_model_prompt_turns_and_extra_args_for_claude(tmp_path: Path) -> None:
    (tmp_path / "mcp.json").write_text("{}")
    argv = option_flags("claude", AgentOptions.build(
        model="claude-sonnet-4-5", allowed_tools=["Read", "Bash(git diff:*)"], disallowed_tools=["WebFetch"],
        mcp_config="mcp.json", append_system_prompt="-be brief", max_turns=5, extra_args=["--verbose"]),
        cwd=tmp_path)
    assert argv == ["--model", "claude-sonnet-4-5", "--allowedTools", "Read,Bash(git diff:*)",
                    "--disallowedTools", "WebFetch", "--mcp-config", str(tmp_path / "mcp.json"),
                    "--append-system-prompt", "-be brief", "--max-turns", "5", "--verbose"]


def test_codex_gets_model_and_instructions_as_a_toml_string_override() -> None:
    argv = flags("codex", model="gpt-5-codex", append_system_prompt='say "hi"\nthen stop',
                 extra_args=["--skip-git-repo-check"])
    assert argv == ["--model", "gpt-5-codex", "-c", 'developer_instructions="say \\"hi\\"\\nthen stop"',
                    "--skip-git-repo-check"]


def test_gemini_gets_model_and_allowed_tools() -> None:
    assert flags("gemini", model="gemini-2.5-pro", allowed_tools=["ShellTool(git status)", "ReadFileTool"]) == [
        "--model", "gemini-2.5-pro", "--allowed-tools", "ShellTool(git status),ReadFileTool"]


@pytest.mark.parametrize(("agent", "option", "value"), [
    (agent, option, value)
    for option, value in [("allowed_tools", ["Read"]), ("disallowed_tools", ["Edit"]), ("mcp_config", "m.json"),
                          ("append_system_prompt", "x"), ("max_turns", 3)]
    for agent in ("claude", "codex", "gemini") if FLAGS[option][agent] is None
])
def test_an_option_the_cli_lacks_is_refused_naming_it(agent: str, option: str, value: Any) -> None:
    with pytest.raises(UnsupportedAgentOptionError, match=f"{agent} does not support the option {option}") as err:
        check_options(agent, AgentOptions.build(**{option: value}))
    assert err.value.code == "unsupported_agent_option" and "agent=" in (err.value.fix or "")


def test_the_unsupported_matrix_is_what_the_docs_table_says() -> None:
    unsupported = {(o, a) for o, row in FLAGS.items() for a, f in row.items() if f is None}
    assert unsupported == {("allowed_tools", "codex"), ("disallowed_tools", "codex"), ("disallowed_tools", "gemini"),
                           ("mcp_config", "codex"), ("mcp_config", "gemini"), ("append_system_prompt", "gemini"),
                           ("max_turns", "codex"), ("max_turns", "gemini")}
    doc = (Path(__file__).resolve().parents[2] / "docs" / "workflows.md").read_text()
    table = doc.split("## Agent options", 1)[1].split("\n## ", 1)[0]
    for option, row in FLAGS.items():
        line = next(x for x in table.splitlines() if x.startswith(f"| `{option}`"))
        assert line.count("not supported") == sum(1 for f in row.values() if f is None), line


@pytest.mark.parametrize(("opts", "message"), [
    ({"allowed_tools": "Read"}, "must be a list of strings"),
    ({"allowed_tools": ["--dangerously-skip-permissions"]}, "starts with '-'"),
    ({"disallowed_tools": ["Read,Edit"]}, "holds a comma"),
    ({"extra_args": "--verbose --debug"}, "must be a list of strings"),
    ({"max_turns": 0}, "positive integer"),
    ({"max_turns": True}, "positive integer"),
    ({"model": "--help"}, "starts with '-'"),
    ({"permission_mode": ""}, "non-empty string"),
])
def test_bad_values_are_refused(opts: dict[str, Any], message: str) -> None:
    with pytest.raises(AgentOptionValueError, match=message):
        option_flags("claude", AgentOptions.build(**opts))


def test_mcp_config_must_exist_relative_to_the_steps_cwd(tmp_path: Path) -> None:
    opts = AgentOptions.build(mcp_config="servers.json")
    check_options("claude", opts)   # no cwd (import time): the file is checked when the step runs
    with pytest.raises(AgentOptionValueError, match="does not exist"):
        check_options("claude", opts, cwd=tmp_path)
    (tmp_path / "servers.json").write_text("{}")
    check_options("claude", opts, cwd=tmp_path)


# Import time ----------------------------------------------------------------------------------

def test_define_workflow_refuses_an_unsupported_option_in_the_body() -> None:
    with pytest.raises(UnsupportedAgentOptionError) as err:
        @define_workflow(id="opts-codex")
        async def body(ctx: Any, st: Any) -> None:
            await st.agent("review", prompt="look", agent="codex", max_turns=3)
    assert "workflow 'opts-codex', step 'review'" in err.value.what
    assert "codex does not support the option max_turns" in err.value.what
    assert "test_agentopts.py, line" in err.value.what


def test_define_workflow_checks_literal_values_and_defaults_to_claude() -> None:
    with pytest.raises(AgentOptionValueError, match="'yolo' is not one of claude's modes"):
        @define_workflow(id="opts-mode")
        async def body(ctx: Any, step: Any) -> None:
            await step.agent("plan", prompt="p", permission_mode="yolo")


def test_non_literal_agents_and_values_are_left_to_the_run() -> None:
    @define_workflow(id="opts-dynamic")
    async def body(ctx: Any, step: Any) -> None:
        which = ctx.input["agent"]
        await step.agent("a", prompt="p", agent=which, max_turns=3)
        await step.agent("b", prompt="p", agent="claude", max_turns=ctx.input["turns"], model=None)
        await step.agent("c", prompt="p", agent="gemini", max_turns=None)

    assert body.spec.id == "opts-dynamic"


BAD_FILE = '''from agentcmd import define_workflow


@define_workflow(id="review-bad")
async def review(ctx, step):
    plan = await step.agent("plan", prompt="plan it", max_turns=4)
    await step.agent("check", prompt=plan.text, agent="gemini",
                     disallowed_tools=["run_shell_command"])
'''


def test_a_workflow_file_with_an_unsupported_option_fails_to_load(project: Path, write_workflow: Any) -> None:
    path = write_workflow("review.py", BAD_FILE)
    found = discover(project, entry_points=False)
    assert "review-bad" not in found.workflows
    (error,) = found.errors
    assert error.source == str(path) and error.kind == "invalid_workflow"
    assert "step 'check'" in error.error and f"{path}, line 7" in error.error
    assert "gemini does not support the option disallowed_tools" in error.error
    assert "agent= one of claude" in error.hint


def test_workflows_list_reports_the_refused_option_with_its_fix(project: Path, write_workflow: Any,
                                                                 cli: Any) -> None:
    path = write_workflow("review.py", BAD_FILE)
    out = cli("workflows", "list", "--project", str(project), env={"PORT": "1"})
    assert out.returncode == 1
    assert f"{path}:4: UnsupportedAgentOptionError: workflow 'review-bad', step 'check'" in out.stderr
    assert "gemini does not support the option disallowed_tools" in out.stderr
    assert "fix: remove disallowed_tools= from this step, or run it with agent= one of claude" in out.stderr
