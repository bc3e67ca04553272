"""step.agent at run time: option flags reach the CLI, refusals fail without retry, usage is
recorded for every attempt, and budgets stop the run with "budget exceeded"."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from agentcmd.workflows import costs

FAKE = r"""#!{python}
import json, os, sys
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:]}}) + "\n")
if os.environ.get("FAKE_AGENT_FAIL"):
    sys.stderr.write("fake agent failure\n")
    sys.exit(3)
print(os.environ.get("FAKE_RESULT") or json.dumps({{"type": "result", "result": "ok", "session_id": "s1"}}))
"""

RESULT = {"type": "result", "subtype": "success", "is_error": False, "result": "done", "session_id": "s1",
          "num_turns": 4, "total_cost_usd": 0.05,
          "usage": {"input_tokens": 10, "cache_creation_input_tokens": 500, "cache_read_input_tokens": 2000,
                    "output_tokens": 300}}


@pytest.fixture
def agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake claude, codex and gemini first on PATH; each call's argv goes to <name>.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("claude", "codex", "gemini"):
        path = bin_dir / name
        path.write_text(FAKE.format(python=sys.executable, log=str(bin_dir / f"{name}.log")))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_RESULT", json.dumps(RESULT))
    return bin_dir


def calls(bin_dir: Path, name: str) -> list[list[str]]:
    log = bin_dir / f"{name}.log"
    return [json.loads(x)["argv"] for x in log.read_text().splitlines()] if log.exists() else []


OPTIONS = '''
from agentcmd import define_workflow

@define_workflow(id="opts", retries=2)
async def body(ctx, step):
    r = await step.agent("ask", prompt="-hi", agent=ctx.input["agent"], model=ctx.input.get("model"),
                         **ctx.input["options"])
    return {"text": r.text, "in": r.input_tokens, "cached": r.cached_tokens, "out": r.output_tokens,
            "cost": r.cost_usd, "source": r.cost_source, "turns": r.turns}
'''


@pytest.mark.parametrize(("agent", "options", "expected"), [
    ("claude", {"permission_mode": "plan", "allowed_tools": ["Read", "Grep"], "max_turns": 3},
     ["--permission-mode", "plan", "--allowedTools", "Read,Grep", "--max-turns", "3",
      "-p", "--output-format", "stream-json", "--verbose", "--", "-hi"]),
    ("codex", {"permission_mode": "read-only", "extra_args": ["--skip-git-repo-check"]},
     ["exec", "--sandbox", "read-only", "--skip-git-repo-check", "--json", "--", "-hi"]),
    ("gemini", {"permission_mode": "yolo", "allowed_tools": ["ReadFileTool"]},
     ["--approval-mode", "yolo", "--allowed-tools", "ReadFileTool", "--output-format", "stream-json",
      "--prompt=-hi"]),
])
def test_options_reach_each_cli_as_its_flags(app_server: Any, write_workflow: Any, agents: Path,
                                             agent: str, options: dict[str, Any], expected: list[str]) -> None:
    write_workflow("opts.py", OPTIONS)
    run = app_server().driver.run("opts", {"agent": agent, "options": options})
    assert run.status == "Completed", run.output
    assert calls(agents, agent) == [expected]


def test_an_option_the_cli_lacks_fails_the_step_without_retry_when_the_agent_is_only_known_at_run_time(
        app_server: Any, write_workflow: Any, agents: Path) -> None:
    write_workflow("opts.py", OPTIONS)
    run = app_server().driver.run("opts", {"agent": "codex", "options": {"max_turns": 3}}, max_attempts=3)
    assert run.status == "Failed"
    assert "codex does not support the option max_turns" in run.output["message"]
    assert len(run.calls) == 1 and calls(agents, "codex") == []


def test_a_missing_mcp_config_fails_the_step(app_server: Any, write_workflow: Any, agents: Path) -> None:
    write_workflow("opts.py", OPTIONS)
    run = app_server().driver.run("opts", {"agent": "claude", "options": {"mcp_config": "nope.json"}})
    assert run.status == "Failed" and "does not exist" in run.output["message"]


def test_usage_is_in_the_result_and_the_ledger(app_server: Any, write_workflow: Any, agents: Path) -> None:
    write_workflow("opts.py", OPTIONS)
    server = app_server()
    run = server.driver.run("opts", {"agent": "claude", "options": {}}, run_id="run-usage")
    assert run.output == {"text": "done", "in": 2510, "cached": 2000, "out": 300, "cost": 0.05,
                          "source": "reported", "turns": 4}
    [entry] = costs.run_entries(server.app.state.runtime.data_dir, "run-usage")
    assert entry["status"] == "completed" and entry["workflow"] == "opts" and entry["step_id"] == "ask"
    assert (entry["input_tokens"], entry["cost_usd"], entry["agent"]) == (2510, 0.05, "claude")


def test_a_failed_attempt_is_recorded_too(app_server: Any, write_workflow: Any, agents: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write_workflow("opts.py", OPTIONS)
    monkeypatch.setenv("FAKE_AGENT_FAIL", "1")
    server = app_server()
    run = server.driver.run("opts", {"agent": "codex", "options": {}}, run_id="run-fail", max_attempts=2)
    assert run.status == "Failed"
    entries = costs.run_entries(server.app.state.runtime.data_dir, "run-fail")
    assert [(e["attempt"], e["status"], e["cost_usd"]) for e in entries] == [(0, "failed", None),
                                                                             (1, "failed", None)]


BUDGET = '''
from agentcmd import define_workflow

@define_workflow(id="budget", retries=3, max_cost_usd=0.05)
async def body(ctx, step):
    await step.agent("first", prompt="one", max_cost_usd=ctx.input.get("step_max"))
    await step.agent("second", prompt="two")
    return "spent"
'''


def test_a_step_over_its_own_budget_fails_the_run_without_retry(app_server: Any, write_workflow: Any,
                                                                 agents: Path) -> None:
    write_workflow("budget.py", BUDGET)
    server = app_server()
    run = server.driver.run("budget", {"step_max": 0.01}, run_id="run-step-budget", max_attempts=4)
    assert run.status == "Failed"
    assert run.output["message"].startswith("budget exceeded: this step cost $0.0500, over its max_cost_usd")
    assert len(calls(agents, "claude")) == 1   # never retried
    [entry] = costs.run_entries(server.app.state.runtime.data_dir, "run-step-budget")
    assert entry["status"] == "budget_exceeded" and entry["cost_usd"] == 0.05


def test_a_spent_workflow_budget_stops_the_next_agent_before_it_starts(app_server: Any, write_workflow: Any,
                                                                       agents: Path) -> None:
    write_workflow("budget.py", BUDGET)
    run = app_server().driver.run("budget", {}, max_attempts=4)
    assert run.status == "Failed"
    assert "budget exceeded: the run already spent $0.0500 of its workflow's max_cost_usd $0.0500" in \
        run.output["message"]
    assert calls(agents, "claude") == [["-p", "--output-format", "stream-json", "--verbose", "--", "one"]]
