"""Tokens and cost: prices, the usage ledger's totals per run and per workflow, budgets."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import inngest
import pytest
from tests.polling import wait_for

from agentcmd.errors import WorkflowDefinitionError
from agentcmd.workflows import costs
from agentcmd.workflows.costs import (
    DEFAULT_PRICES,
    Budget,
    BudgetExceededError,
    price_cost,
    record_usage,
    run_usage,
    workflow_usage,
    workflow_usage_sync,
)
from agentcmd.workflows.define import define_workflow
from agentcmd.workflows.process import run_process


def entry(run_id: str = "run1", step_id: str = "plan", **kw: Any) -> dict[str, Any]:
    base = {"run_id": run_id, "workflow": "fix", "step_id": step_id, "attempt": 0, "agent": "codex",
            "model": "gpt-5-codex", "input_tokens": 1000, "output_tokens": 200, "cached_tokens": 100,
            "cost_usd": 0.25, "turns": 2, "duration_s": 1.5, "status": "completed"}
    return {**base, **kw}


# Prices ---------------------------------------------------------------------------------------

def test_price_from_the_table_counts_cached_input_at_its_own_rate() -> None:
    # 900k uncached input at 1.25, 100k cached at 0.125, 200k output at 10 per million
    assert price_cost("codex", "gpt-5-codex", 1_000_000, 200_000, 100_000) == pytest.approx(
        0.9 * 1.25 + 0.1 * 0.125 + 0.2 * 10)


def test_a_dated_model_is_priced_by_its_longest_known_prefix() -> None:
    assert price_cost("claude", "claude-sonnet-4-5-20250929", 1_000_000, 0, 0) == pytest.approx(3.0)
    assert price_cost("codex", "gpt-5.1-codex-mini", 1_000_000, 0, 0) == pytest.approx(0.25)  # not gpt-5.1's


def test_no_model_uses_the_agents_entry_and_an_unknown_model_has_no_price() -> None:
    assert price_cost("gemini", None, 0, 1_000_000, 0) == pytest.approx(DEFAULT_PRICES["gemini"]["output_per_mtok"])
    assert price_cost("codex", "some-local-model", 10, 10, 0) is None


def test_the_prices_setting_overrides_and_adds_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTCMD_HOME", str(tmp_path))
    monkeypatch.setenv("AGENTCMD_PRICES", json.dumps({
        "gpt-5-codex": {"output_per_mtok": 20},
        "my-model": {"input_per_mtok": 1, "output_per_mtok": 2}}))
    assert price_cost("codex", "gpt-5-codex", 0, 1_000_000, 0) == pytest.approx(20.0)
    assert price_cost("codex", "gpt-5-codex", 1_000_000, 0, 0) == pytest.approx(1.25)  # the rest stays built in
    assert price_cost("codex", "my-model", 1_000_000, 1_000_000, 0) == pytest.approx(3.0)


def test_a_negative_price_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from agentcmd.config import load_settings
    from agentcmd.errors import ConfigError

    monkeypatch.setenv("AGENTCMD_HOME", str(tmp_path))
    monkeypatch.setenv("AGENTCMD_PRICES", json.dumps({"m": {"input_per_mtok": -1}}))
    with pytest.raises(ConfigError, match="PRICES"):
        load_settings()


# Ledger ---------------------------------------------------------------------------------------

async def test_run_totals_count_every_attempt_failed_ones_too(tmp_path: Path) -> None:
    await record_usage(tmp_path, entry(step_id="plan", attempt=0, status="failed", cost_usd=0.1))
    await record_usage(tmp_path, entry(step_id="plan", attempt=1))
    await record_usage(tmp_path, entry(step_id="fix", cost_usd=None, cached_tokens=0))
    await record_usage(tmp_path, entry(run_id="other", cost_usd=9.0))
    got = await run_usage(tmp_path, "run1")
    assert got == {"input_tokens": 3000, "output_tokens": 600, "cached_tokens": 200, "cost_usd": 0.35,
                   "turns": 6, "duration_s": 4.5, "agent_steps": 2, "attempts": 3, "cost_unknown": 1}
    assert (await run_usage(tmp_path, "nothing-yet"))["attempts"] == 0


async def test_ledger_files_are_private_and_append_only_lines(tmp_path: Path) -> None:
    await asyncio.gather(*(record_usage(tmp_path, entry(step_id=f"s{i}")) for i in range(20)))
    run_file = tmp_path / "usage" / "runs" / "run1.jsonl"
    (day_file,) = (tmp_path / "usage" / "workflows" / "fix").iterdir()
    for path in (run_file, day_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        lines = path.read_text().splitlines()
        assert len(lines) == 20 and all(json.loads(x)["run_id"] == "run1" for x in lines)
    assert day_file.name == datetime.datetime.now(datetime.UTC).date().isoformat() + ".jsonl"


async def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    await record_usage(tmp_path, entry())
    with (tmp_path / "usage" / "runs" / "run1.jsonl").open("a") as f:
        f.write('{"run_id": "run1", "cost_u')
    assert (await run_usage(tmp_path, "run1"))["attempts"] == 1


def test_workflow_totals_cover_the_last_30_days_only(tmp_path: Path) -> None:
    now = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)
    for days_ago, run in [(0, "r0"), (29, "r29"), (30, "r30"), (45, "r45")]:
        ended = (now - datetime.timedelta(days=days_ago)).isoformat()
        costs.record_usage_sync(tmp_path, entry(run_id=run, ended_at=ended, cost_usd=1.0))
    costs.record_usage_sync(tmp_path, {**entry(run_id="elsewhere"), "workflow": "other"})
    got = workflow_usage_sync(tmp_path, "fix", 30, now=now)
    assert got["runs"] == 2 and got["cost_usd"] == 2.0 and got["days"] == 30
    assert workflow_usage_sync(tmp_path, "fix", 60, now=now)["runs"] == 4


async def test_workflow_usage_today(tmp_path: Path) -> None:
    await record_usage(tmp_path, entry())
    assert (await workflow_usage(tmp_path, "fix"))["input_tokens"] == 1000


def test_ids_that_are_not_plain_names_never_become_paths(tmp_path: Path) -> None:
    costs.record_usage_sync(tmp_path, entry(run_id="../../etc", workflow="../x"))
    assert not (tmp_path / "usage").exists()
    assert costs.run_usage_sync(tmp_path, "../../etc")["attempts"] == 0


# Budgets --------------------------------------------------------------------------------------

async def test_budget_takes_what_the_run_already_spent(tmp_path: Path) -> None:
    await record_usage(tmp_path, entry(cost_usd=0.75))
    budget = await Budget.for_step(tmp_path, "run1", workflow_max=1.0, step_max=0.5)
    assert budget.spent_before == 0.75 and budget.remaining == pytest.approx(0.25)
    assert budget.exceeded(0.25) is None                     # exactly at the limit is not past it
    message = budget.exceeded(0.26)
    assert message is not None and message.startswith("budget exceeded: the run cost $1.01")
    assert "workflow's max_cost_usd $1.00" in message


def test_the_steps_own_limit() -> None:
    budget = Budget(step_max=0.5)
    assert budget.remaining == 0.5 and budget.exceeded(0.5) is None
    err = budget.error(0.52)
    assert isinstance(err, BudgetExceededError) and isinstance(err, inngest.NonRetriableError)
    assert str(err).startswith("budget exceeded: this step cost $0.52, over its max_cost_usd $0.50")


def test_no_limit_never_stops_and_a_spent_budget_refuses_to_start() -> None:
    assert Budget().exceeded(1e9) is None and Budget().remaining is None and not Budget().limited
    spent = Budget(workflow_max=1.0, spent_before=1.0)
    assert spent.before_start() is not None and spent.before_start().startswith("budget exceeded:")  # type: ignore[union-attr]
    assert Budget(workflow_max=1.0, spent_before=0.99).before_start() is None


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_define_workflow_refuses_a_budget_that_is_not_a_positive_number(bad: Any) -> None:
    with pytest.raises(WorkflowDefinitionError, match="max_cost_usd must be a positive number"):
        define_workflow(id="b", max_cost_usd=bad)


def test_the_budget_is_in_the_workflows_description() -> None:
    @define_workflow(id="budgeted", max_cost_usd=5)
    async def body(ctx: Any, step: Any) -> None:
        return None

    assert body.spec.max_cost_usd == 5.0 and body.describe()["max_cost_usd"] == 5.0


def test_the_meter_prefers_the_reported_cost_and_prices_tokens_otherwise() -> None:
    meter = costs.CostMeter("codex", "gpt-5-codex", table=DEFAULT_PRICES)
    assert meter.cost({"cost_usd": 0.42, "input_tokens": 10**6}) == (0.42, "reported")
    assert meter.cost({"input_tokens": 10**6, "output_tokens": 0, "cached_tokens": 0}) == (1.25, "price_table")
    assert costs.CostMeter("codex", "unknown-model", table=DEFAULT_PRICES).cost({"input_tokens": 5}) == (None, None)


STREAMER = r"""
import json, os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1], "w") as f:
    f.write(str(child.pid))
for n in range(1, 200):
    print(json.dumps({"type": "usage", "input_tokens": n * 100_000, "output_tokens": 0, "cached_tokens": 0}),
          flush=True)
    time.sleep(0.05)
"""


async def test_a_budget_crossed_mid_stream_stops_the_process_group(tmp_path: Path) -> None:
    # gpt-5-codex input: $1.25 per million tokens, so each line adds $0.125; the step may spend $0.30.
    watch = costs.BudgetWatch(Budget(step_max=0.30), costs.CostMeter("codex", "gpt-5-codex", table=DEFAULT_PRICES))
    seen: list[int] = []

    def on_line(stream: str, line: str) -> None:
        if stream == "stdout":
            event = json.loads(line)
            seen.append(event["input_tokens"])
            watch.update(event)

    pid_file = tmp_path / "child.pid"
    res = await run_process([sys.executable, "-c", STREAMER, str(pid_file)], cwd=tmp_path,
                            on_line=on_line, stop=watch.stop, grace=2)
    assert res.stopped and not res.timed_out
    assert seen[-1] < 1_000_000                        # stopped right after the third line, not at the end
    err = watch.error()
    assert err is not None and str(err).startswith("budget exceeded: this step cost $0.38, over its max_cost_usd")
    assert watch.cost == pytest.approx(0.375) and watch.source == "price_table"
    child = int(pid_file.read_text())

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, 10, "the agent's child process stopped with its group")


@pytest.mark.parametrize(("value", "message"), [("nope", "prices is not valid JSON"),
                                                ('{"m": {"input_per_mtok": 1, "bogus": 2}}', "Extra inputs")])
def test_a_bad_prices_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    from agentcmd.config import load_settings
    from agentcmd.errors import ConfigError

    monkeypatch.setenv("AGENTCMD_PRICES", value)
    with pytest.raises(ConfigError, match=message):
        load_settings()
    monkeypatch.setenv("AGENTCMD_PRICES", "")
    assert load_settings().prices == {}
