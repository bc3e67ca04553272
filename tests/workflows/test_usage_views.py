"""Tokens and cost where people read them: the app API's run and workflow, and ``runs show``.

The workflow records ledger lines and returns an agent-shaped result from
``step.run``, as an agent step does: the views are tested on their own,
whatever runs the agent.
"""

from __future__ import annotations

import json
from typing import Any

SPEND = '''
from agentcmd import define_workflow
from agentcmd.workflows import costs

ATTEMPT = {"workflow": "spend", "step_id": "review", "agent": "codex", "model": "gpt-5-codex",
           "input_tokens": 12000, "output_tokens": 3400, "cached_tokens": 2000, "turns": 3, "duration_s": 2.0}

@define_workflow(id="spend", retries=0, max_cost_usd=3)
async def spend(ctx, step):
    def review():
        costs.record_usage_sync(ctx.data_dir, {**ATTEMPT, "run_id": ctx.run_id, "attempt": 0,
                                               "status": "failed", "cost_usd": 0.01})
        costs.record_usage_sync(ctx.data_dir, {**ATTEMPT, "run_id": ctx.run_id, "attempt": 1,
                                               "status": "completed", "cost_usd": 0.0475})
        return {"agent": "codex", "text": "looks fine", "exit_code": 0, "model": "gpt-5-codex",
                "input_tokens": 12000, "output_tokens": 3400, "cached_tokens": 2000, "cost_usd": 0.0475,
                "cost_source": "price_table", "turns": 3, "duration_s": 2.0}
    await step.run("review", review)
    await step.cli("say", "echo done")
    return "ok"
'''


def _run(stack: Any, write_workflow: Any, wait_until: Any) -> tuple[Any, dict[str, Any]]:
    write_workflow("spend.py", SPEND)
    s = stack()
    started = s.app.post("/api/workflows/spend/runs", json={"input": {}}).json()["data"]
    run = wait_until(lambda: (r := s.app.get(f"/api/runs/{started['run_id']}").json()["data"])["status"]
                     == "Completed" and r, 20, "run completed")
    return s, run


def test_the_run_has_its_totals_and_each_agent_step_its_usage(
        stack: Any, write_workflow: Any, wait_until: Any) -> None:
    s, run = _run(stack, write_workflow, wait_until)
    assert run["usage"] == {"input_tokens": 24000, "output_tokens": 6800, "cached_tokens": 4000, "cost_usd": 0.0575,
                            "turns": 6, "duration_s": 4.0, "agent_steps": 1, "attempts": 2, "cost_unknown": 0}
    review, say = run["steps"]
    assert review["usage"] == {"agent": "codex", "model": "gpt-5-codex", "input_tokens": 12000,
                               "output_tokens": 3400, "cached_tokens": 2000, "cost_usd": 0.0475,
                               "cost_source": "price_table", "turns": 3, "duration_s": 2.0, "attempts": 2}
    assert "usage" not in say
    wf = s.app.get("/api/workflows/spend").json()["data"]
    assert wf["max_cost_usd"] == 3.0
    assert wf["usage"]["runs"] == 1 and wf["usage"]["cost_usd"] == 0.0575 and wf["usage"]["days"] == 30


def test_runs_show_prints_tokens_and_cost_per_agent_step_and_the_total(
        stack: Any, write_workflow: Any, wait_until: Any, cli: Any) -> None:
    s, run = _run(stack, write_workflow, wait_until)
    env = {"PORT": str(s.app.url.rsplit(":", 1)[1]), "COLUMNS": "200"}
    out = cli("runs", "show", run["run_id"], env=env)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if " review " in x)
    assert "12.0k/3.4k" in line and "$0.0475" in line
    assert "agent steps: 1, in 24.0k (cached 4.0k) / out 6.8k tokens, $0.0575, 6 turns" in out.stdout
    shown = json.loads(cli("runs", "show", run["run_id"], "--json", env=env).stdout)
    assert shown["usage"]["cost_usd"] == 0.0575


def test_the_run_and_workflow_pages_show_the_usage(stack: Any, write_workflow: Any, wait_until: Any) -> None:
    s, run = _run(stack, write_workflow, wait_until)
    page = s.app.get(f"/runs/{run['run_id']}")
    assert page.status_code == 200, page.text
    assert "1 agent step: in 24.0k (cached 4.0k) / out 6.8k tokens, $0.0575, 6 turns" in page.text
    assert "in 12.0k (cached 2.0k) / out 3.4k tokens, $0.0475, 3 turns" in page.text   # the review step
    twin = s.app.get(f"/runs/{run['run_id']}.json").json()
    assert twin["usage"]["cost_usd"] == 0.0575
    wf_page = s.app.get("/workflows/spend")
    assert "Agent usage, last 30 days" in wf_page.text and "1 run: in 24.0k" in wf_page.text
    assert "Budget per run</dt><dd>$3.00" in wf_page.text
