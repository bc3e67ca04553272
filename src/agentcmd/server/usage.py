"""Tokens and cost in the app's run and workflow views (``workflows/costs.py`` keeps the ledger).

A run view gets ``usage``: the run's totals from the ledger (every agent
attempt, failed ones too). Each agent step gets ``usage``: from its result
(``AgentResult``'s token and cost fields) when it completed, else the
ledger's totals of its attempts (a failed or over-budget step has no
result). A workflow gets ``usage``: its totals over the last 30 days.
Ledger files are read in a thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agentcmd.workflows import costs

USAGE_FIELDS = ("agent", "model", "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "cost_source",
                "turns", "duration_s")
WORKFLOW_DAYS = 30


def result_usage(output: Any) -> dict[str, Any] | None:
    """The usage of an agent step's result (the step output as the engine stores it), else None."""
    data = output.get("data", output) if isinstance(output, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("agent"), str) or "text" not in data:
        return None
    usage = {k: data.get(k) for k in USAGE_FIELDS}
    for key in ("input_tokens", "output_tokens", "cached_tokens", "turns"):
        usage[key] = usage[key] if isinstance(usage[key], int) else 0
    return usage


def _enrich(view: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    per_step = costs.step_usage(entries)
    summed: list[dict[str, Any]] = []
    last_attempt = {str(e.get("step_id")): e for e in entries}
    for step in view.get("steps") or []:
        sid = str(step.get("step_id") or step.get("name"))
        usage = result_usage(step.get("output"))
        ledger = per_step.get(sid)
        if usage is None and ledger is not None:   # failed, over budget or still running: no result
            usage = {**{k: ledger.get(k) for k in USAGE_FIELDS if k in ledger},
                     "agent": last_attempt[sid].get("agent"), "model": last_attempt[sid].get("model"),
                     "cost_source": None}
        if usage is not None:
            if ledger is not None:
                usage["attempts"] = ledger["attempts"]
            step["usage"] = usage
            summed.append(usage)
    # The ledger counts every attempt; a run from before it existed still sums its results.
    view["usage"] = costs.totals(entries) if entries else costs.totals(
        [{**u, "step_id": n} for n, u in enumerate(summed)])
    return view


async def add_run_usage(view: dict[str, Any], data_dir: Path | None) -> dict[str, Any]:
    """``view`` (a ``run_view``) with ``usage`` on the run and on each agent step."""
    run_id = str(view.get("run_id") or "")
    entries = await asyncio.to_thread(costs.run_entries, data_dir, run_id) if data_dir and run_id else []
    return _enrich(view, entries)


async def workflow_usage(data_dir: Path | None, workflow_id: str) -> dict[str, Any]:
    """A workflow's totals over the last 30 days (``runs`` and ``days`` included)."""
    if data_dir is None:
        return {**costs.totals(()), "days": WORKFLOW_DAYS, "runs": 0}
    return await costs.workflow_usage(data_dir, workflow_id, WORKFLOW_DAYS)
