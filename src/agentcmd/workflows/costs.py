"""Tokens and cost of agent steps: the price table, the usage ledger, budgets.

Cost comes from the CLI when it reports one (claude's ``total_cost_usd``);
for CLIs that report only tokens (codex, gemini) it is priced from the
table: ``DEFAULT_PRICES`` below, overridden and extended per model by the
``prices`` setting. Tokens follow one convention whatever the CLI:
``input_tokens`` counts every input token, ``cached_tokens`` the part of
them read from the provider's cache (priced at ``cached_per_mtok``).

The ledger: every agent attempt (failed, cancelled and over-budget ones
too, since they cost money) is one JSON line appended twice, once to the
run's file and once to the workflow's file of that UTC day::

    <data_dir>/usage/runs/<run_id>.jsonl
    <data_dir>/usage/workflows/<workflow_id>/<YYYY-MM-DD>.jsonl

so a run's total reads one small file and a workflow's last 30 days read
at most 31. Files are 0600 in 0700 directories and written in a thread:
the event loop never waits on the disk. Lines are only ever appended.

Budgets: ``define_workflow(max_cost_usd=)`` bounds a whole run (what the
run already spent before the step counts), ``step.agent(max_cost_usd=)``
one step. ``Budget.exceeded(live_cost)`` is checked as usage arrives
(``BudgetWatch`` prices each streamed usage report with a ``CostMeter``
and sets the ``run_process`` stop event); the step stops its agent's
process group and fails with ``BudgetExceededError``, which the SDK never
retries, so the run fails.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import inngest

from agentcmd.observe.appmetrics import APP_METRICS
from agentcmd.privatefs import FILE_MODE, ensure_private_dir
from agentcmd.safenames import is_plain_name

DEFAULT_PRICES: dict[str, dict[str, float]] = {
    # Anthropic (claude reports its own cost; these price a run that did not)
    "claude-opus-4-5": {"input_per_mtok": 5.0, "output_per_mtok": 25.0, "cached_per_mtok": 0.5},
    "claude-opus-4-1": {"input_per_mtok": 15.0, "output_per_mtok": 75.0, "cached_per_mtok": 1.5},
    "claude-opus-4": {"input_per_mtok": 15.0, "output_per_mtok": 75.0, "cached_per_mtok": 1.5},
    "claude-sonnet-4-5": {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cached_per_mtok": 0.3},
    "claude-sonnet-4": {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cached_per_mtok": 0.3},
    "claude-haiku-4-5": {"input_per_mtok": 1.0, "output_per_mtok": 5.0, "cached_per_mtok": 0.1},
    "claude-3-5-haiku": {"input_per_mtok": 0.8, "output_per_mtok": 4.0, "cached_per_mtok": 0.08},
    # OpenAI (codex)
    "gpt-5.1-codex-mini": {"input_per_mtok": 0.25, "output_per_mtok": 2.0, "cached_per_mtok": 0.025},
    "gpt-5.1-codex": {"input_per_mtok": 1.25, "output_per_mtok": 10.0, "cached_per_mtok": 0.125},
    "gpt-5.1": {"input_per_mtok": 1.25, "output_per_mtok": 10.0, "cached_per_mtok": 0.125},
    "gpt-5-codex": {"input_per_mtok": 1.25, "output_per_mtok": 10.0, "cached_per_mtok": 0.125},
    "gpt-5-mini": {"input_per_mtok": 0.25, "output_per_mtok": 2.0, "cached_per_mtok": 0.025},
    "gpt-5": {"input_per_mtok": 1.25, "output_per_mtok": 10.0, "cached_per_mtok": 0.125},
    "o4-mini": {"input_per_mtok": 1.1, "output_per_mtok": 4.4, "cached_per_mtok": 0.275},
    "gpt-4.1": {"input_per_mtok": 2.0, "output_per_mtok": 8.0, "cached_per_mtok": 0.5},
    # Google (gemini; prompts up to 200k tokens)
    "gemini-3-pro-preview": {"input_per_mtok": 2.0, "output_per_mtok": 12.0, "cached_per_mtok": 0.2},
    "gemini-2.5-pro": {"input_per_mtok": 1.25, "output_per_mtok": 10.0, "cached_per_mtok": 0.125},
    "gemini-2.5-flash-lite": {"input_per_mtok": 0.1, "output_per_mtok": 0.4, "cached_per_mtok": 0.01},
    "gemini-2.5-flash": {"input_per_mtok": 0.3, "output_per_mtok": 2.5, "cached_per_mtok": 0.03},
    # A step that names no model runs the CLI's default one
    "codex": {"input_per_mtok": 1.25, "output_per_mtok": 10.0, "cached_per_mtok": 0.125},
    "gemini": {"input_per_mtok": 1.25, "output_per_mtok": 10.0, "cached_per_mtok": 0.125},
    "claude": {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cached_per_mtok": 0.3},
}
"""USD per million tokens. A model is matched exactly, else by the longest key it starts with
(``claude-sonnet-4-5-20250929`` -> ``claude-sonnet-4-5``); a step without a model uses its agent's entry."""

TOTAL_KEYS = ("input_tokens", "output_tokens", "cached_tokens", "cost_usd", "turns", "duration_s")
USAGE_DIR = "usage"


class BudgetExceededError(inngest.NonRetriableError):
    """An agent step passed its ``max_cost_usd`` or its workflow's; its process group was stopped.

    A ``NonRetriableError``: retrying would spend the same money again, so
    the step fails at once and the run fails. The message starts
    ``budget exceeded:``.
    """


# Prices -------------------------------------------------------------------------------------

def price_table() -> dict[str, dict[str, float]]:
    """The built-in prices with the ``prices`` setting laid over them (per model)."""
    from agentcmd.config import load_settings

    table = {k: dict(v) for k, v in DEFAULT_PRICES.items()}
    for model, price in load_settings().prices.items():
        table[model] = {**table.get(model, {}), **price.model_dump(exclude_none=True)}
    return table


def find_price(table: Mapping[str, Mapping[str, float]], agent: str, model: str | None) -> Mapping[str, float] | None:
    if model:
        if model in table:
            return table[model]
        prefixes = [k for k in table if model.startswith(k)]
        if prefixes:
            return table[max(prefixes, key=len)]
        return None
    return table.get(agent)


def price_cost(agent: str, model: str | None, input_tokens: int, output_tokens: int, cached_tokens: int,
               *, table: Mapping[str, Mapping[str, float]] | None = None) -> float | None:
    """USD for these tokens from the price table, or None when the model has no price."""
    price = find_price(table if table is not None else price_table(), agent, model)
    if price is None or "input_per_mtok" not in price or "output_per_mtok" not in price:
        return None
    cached = max(0, min(cached_tokens, input_tokens))
    cached_rate = price.get("cached_per_mtok", price["input_per_mtok"])
    usd = ((input_tokens - cached) * price["input_per_mtok"] + cached * cached_rate
           + output_tokens * price["output_per_mtok"]) / 1_000_000
    return round(usd, 6)


# Ledger -------------------------------------------------------------------------------------

_write_lock = threading.Lock()


def _run_file(data_dir: Path, run_id: str) -> Path:
    return data_dir / USAGE_DIR / "runs" / f"{run_id}.jsonl"


def _workflow_dir(data_dir: Path, workflow_id: str) -> Path:
    return data_dir / USAGE_DIR / "workflows" / workflow_id


def _append(path: Path, line: bytes) -> None:
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        os.write(fd, line)   # one write of one line: O_APPEND keeps concurrent lines whole
    finally:
        os.close(fd)


def record_usage_sync(data_dir: Path, entry: Mapping[str, Any]) -> None:
    """Append one agent attempt to the run's and the workflow's ledger files (blocking)."""
    run_id, workflow = str(entry.get("run_id") or ""), str(entry.get("workflow") or "")
    ended = entry.get("ended_at") or datetime.datetime.now(datetime.UTC).isoformat()
    row = {**entry, "ended_at": ended}
    line = (json.dumps(row, separators=(",", ":"), default=str) + "\n").encode()
    day = str(ended)[:10]
    APP_METRICS.record_usage(row)    # /metrics on the app server (observe/appmetrics.py)
    with _write_lock:
        if is_plain_name(run_id):
            _append(_run_file(data_dir, run_id), line)
        if is_plain_name(workflow):
            _append(_workflow_dir(data_dir, workflow) / f"{day}.jsonl", line)


async def record_usage(data_dir: Path, entry: Mapping[str, Any]) -> None:
    """Record one agent attempt: ``{run_id, workflow, step_id, attempt, agent, model, input_tokens,
    output_tokens, cached_tokens, cost_usd, turns, duration_s, status, ended_at}``."""
    await asyncio.to_thread(record_usage_sync, data_dir, dict(entry))


def _read_lines(path: Path) -> list[dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    rows: list[dict[str, Any]] = []
    for line in raw.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue   # a torn last line after a crash: skip it, keep the rest
        if isinstance(row, dict):
            rows.append(row)
    return rows


def run_entries(data_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """Every recorded agent attempt of a run, oldest first (blocking)."""
    return _read_lines(_run_file(data_dir, run_id)) if is_plain_name(run_id) else []


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return float(value)


def totals(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum of attempts: tokens, cost (of the attempts whose cost is known), turns, duration."""
    out: dict[str, Any] = {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "cost_usd": 0.0,
                           "turns": 0, "duration_s": 0.0, "agent_steps": 0, "attempts": 0, "cost_unknown": 0}
    steps: set[tuple[str, str]] = set()
    for e in entries:
        for key in ("input_tokens", "output_tokens", "cached_tokens", "turns"):
            out[key] += int(_number(e.get(key)))
        out["duration_s"] += _number(e.get("duration_s"))
        if e.get("cost_usd") is None:
            out["cost_unknown"] += 1
        out["cost_usd"] += _number(e.get("cost_usd"))
        out["attempts"] += 1
        steps.add((str(e.get("run_id")), str(e.get("step_id"))))
    out["agent_steps"] = len(steps)
    out["cost_usd"] = round(out["cost_usd"], 6)
    out["duration_s"] = round(out["duration_s"], 3)
    return out


def run_usage_sync(data_dir: Path, run_id: str) -> dict[str, Any]:
    return totals(run_entries(data_dir, run_id))


async def run_usage(data_dir: Path, run_id: str) -> dict[str, Any]:
    """A run's totals: ``input_tokens, output_tokens, cached_tokens, cost_usd, turns, duration_s,
    agent_steps`` (plus ``attempts`` and ``cost_unknown``, the attempts no price was known for)."""
    return await asyncio.to_thread(run_usage_sync, data_dir, run_id)


def workflow_usage_sync(data_dir: Path, workflow_id: str, days: int = 30,
                        now: datetime.datetime | None = None) -> dict[str, Any]:
    if not is_plain_name(workflow_id):
        return {**totals(()), "days": days, "runs": 0}
    today = (now or datetime.datetime.now(datetime.UTC)).date()
    folder = _workflow_dir(data_dir, workflow_id)
    entries: list[dict[str, Any]] = []
    for back in range(days):
        entries += _read_lines(folder / f"{today - datetime.timedelta(days=back)}.jsonl")
    return {**totals(entries), "days": days, "runs": len({e.get("run_id") for e in entries})}


async def workflow_usage(data_dir: Path, workflow_id: str, days: int = 30) -> dict[str, Any]:
    """A workflow's totals over the last ``days`` UTC days (today included), plus ``runs``."""
    return await asyncio.to_thread(workflow_usage_sync, data_dir, workflow_id, days)


def step_usage(entries: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Totals per step id (all its attempts)."""
    by_step: dict[str, list[Mapping[str, Any]]] = {}
    for e in entries:
        by_step.setdefault(str(e.get("step_id")), []).append(e)
    return {sid: totals(rows) for sid, rows in by_step.items()}


# Budgets ------------------------------------------------------------------------------------

def check_max_cost(value: Any, what: str) -> float | None:
    """``max_cost_usd`` as a positive finite float (None stays None), or ValueError saying why."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} max_cost_usd must be a positive number of US dollars, got {value!r}")
    return float(value)


def _usd(value: float) -> str:
    return f"${value:.4f}" if value < 0.1 else f"${value:.2f}"


@dataclass(frozen=True)
class Budget:
    """What one agent step may still spend: its own limit and what is left of its workflow's."""

    step_max: float | None = None
    workflow_max: float | None = None
    spent_before: float = 0.0
    """What the run's earlier agent attempts cost (from the ledger) when this step started."""

    @classmethod
    async def for_step(cls, data_dir: Path, run_id: str, workflow_max: float | None,
                       step_max: float | None) -> Budget:
        spent = (await run_usage(data_dir, run_id))["cost_usd"] if workflow_max is not None else 0.0
        return cls(step_max=step_max, workflow_max=workflow_max, spent_before=spent)

    @property
    def limited(self) -> bool:
        return self.step_max is not None or self.workflow_max is not None

    @property
    def remaining(self) -> float | None:
        """USD this step may spend before one of the limits is passed (None: no limit)."""
        left = [x for x in (self.step_max,
                            None if self.workflow_max is None else self.workflow_max - self.spent_before)
                if x is not None]
        return min(left) if left else None

    def before_start(self) -> str | None:
        """The message when the run has already used up its workflow's budget (the step must not start)."""
        if self.workflow_max is not None and self.spent_before >= self.workflow_max:
            return (f"budget exceeded: the run already spent {_usd(self.spent_before)} of its workflow's "
                    f"max_cost_usd {_usd(self.workflow_max)}; this agent step was not started")
        return None

    def exceeded(self, live_cost_usd: float) -> str | None:
        """The "budget exceeded: ..." message once ``live_cost_usd`` (this step so far) passes a limit."""
        if self.step_max is not None and live_cost_usd > self.step_max:
            return (f"budget exceeded: this step cost {_usd(live_cost_usd)}, over its max_cost_usd "
                    f"{_usd(self.step_max)}; the agent was stopped")
        if self.workflow_max is not None and self.spent_before + live_cost_usd > self.workflow_max:
            return (f"budget exceeded: the run cost {_usd(self.spent_before + live_cost_usd)} "
                    f"({_usd(self.spent_before)} before this step, {_usd(live_cost_usd)} in it), over the "
                    f"workflow's max_cost_usd {_usd(self.workflow_max)}; the agent was stopped")
        return None

    def error(self, live_cost_usd: float) -> BudgetExceededError | None:
        message = self.exceeded(live_cost_usd)
        return None if message is None else BudgetExceededError(message)


class CostMeter:
    """Prices one agent step's running usage; the price table is read once, when the step starts.

    ``cost(usage)`` takes a usage dict (stream events' ``usage``, or the
    final totals) and answers ``(cost_usd, cost_source)``: the CLI's own
    ``cost_usd`` when it reported one (``"reported"``), else the tokens
    priced from the table (``"price_table"``), else ``(None, None)``.
    """

    def __init__(self, agent: str, model: str | None,
                 table: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.agent, self.model = agent, model
        self.table = table if table is not None else price_table()

    def cost(self, usage: Mapping[str, Any]) -> tuple[float | None, str | None]:
        reported = usage.get("cost_usd")
        if not isinstance(reported, bool) and isinstance(reported, int | float) and math.isfinite(reported):
            return float(reported), "reported"
        if not any(_number(usage.get(k)) for k in ("input_tokens", "output_tokens", "cached_tokens")):
            return None, None   # nothing reported: unknown, not free
        priced = price_cost(self.agent, self.model, int(_number(usage.get("input_tokens"))),
                            int(_number(usage.get("output_tokens"))), int(_number(usage.get("cached_tokens"))),
                            table=self.table)
        return (priced, "price_table") if priced is not None else (None, None)


def usage_from_result(parsed: Any) -> dict[str, Any]:
    """Usage totals from an agent's final JSON document (claude's ``--output-format json`` result).

    ``input_tokens`` is every input token: claude reports cache reads and
    cache writes apart from ``input_tokens``, so they are added back;
    ``cached_tokens`` are the cache reads. An unknown shape gives zeros.
    """
    out: dict[str, Any] = {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "cost_usd": None, "turns": 0}
    if not isinstance(parsed, dict):
        return out
    raw = parsed.get("usage")
    usage: dict[str, Any] = raw if isinstance(raw, dict) else {}
    cached = int(_number(usage.get("cache_read_input_tokens")))
    out["input_tokens"] = int(_number(usage.get("input_tokens"))) + cached + int(
        _number(usage.get("cache_creation_input_tokens")))
    out["output_tokens"] = int(_number(usage.get("output_tokens")))
    out["cached_tokens"] = cached
    out["turns"] = int(_number(parsed.get("num_turns")))
    reported = parsed.get("total_cost_usd")
    if not isinstance(reported, bool) and isinstance(reported, int | float) and math.isfinite(reported):
        out["cost_usd"] = float(reported)
    return out


class BudgetWatch:
    """Stops a running agent the moment its streamed usage passes the step's budget.

    For the streaming agent step: ``update(usage)`` with each usage event's
    running totals (``agentstream`` events of kind ``usage``/``result``);
    pass ``stop`` to ``run_process(stop=...)``. Once over budget, ``stop`` is
    set (the process group is stopped) and ``error()`` is the
    ``BudgetExceededError`` to raise. ``cost``/``source`` are the last priced
    values, for the step's result and the ledger.
    """

    def __init__(self, budget: Budget, meter: CostMeter, stop: asyncio.Event | None = None) -> None:
        self.budget, self.meter = budget, meter
        self.stop = stop if stop is not None else asyncio.Event()
        self.cost: float | None = None
        self.source: str | None = None
        self.message: str | None = None

    def update(self, usage: Mapping[str, Any]) -> str | None:
        """Price ``usage`` (running totals); set ``stop`` and answer the message once over budget."""
        cost, source = self.meter.cost(usage)
        if cost is not None:
            self.cost, self.source = cost, source
            if self.message is None and self.budget.limited:
                self.message = self.budget.exceeded(cost)
                if self.message is not None:
                    self.stop.set()
        return self.message

    def error(self) -> BudgetExceededError | None:
        return None if self.message is None else BudgetExceededError(self.message)
