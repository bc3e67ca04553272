"""Run priority: ``priority: {run: "<CEL>"}`` shifts where a run's calls queue.

The expression sees ``event`` and returns whole seconds. Inngest documents
the range as -600..600 and clamps to it; a value that is not an integer
(or an expression that fails on this event) counts as 0, as in Go's
``Function.RunPriorityFactor`` error path.

* A positive factor moves the run ahead of calls queued up to that many
  seconds before it: in this engine that matters where calls wait, i.e. in
  a concurrency key's waiting line (``concurrency.py`` orders it by run
  creation time minus the factor).
* A negative factor delays the run's start by that many seconds
  (``delay_ms``; the first call's queue row gets a later ``ready_at``).
"""

from __future__ import annotations

from typing import Any

from agentcmd.engine import triggers

MIN_FACTOR_S = -600
MAX_FACTOR_S = 600


def clamp(value: int) -> int:
    return max(MIN_FACTOR_S, min(MAX_FACTOR_S, value))


def factor_s(config: dict[str, Any], event: dict[str, Any]) -> int:
    """The run's priority factor in seconds (0 without ``priority.run``)."""
    spec = config.get("priority")
    expr = spec.get("run") if isinstance(spec, dict) else None
    if not isinstance(expr, str) or not expr.strip():
        return 0
    try:
        value = triggers.evaluate(expr, {"event": event})
    except ValueError:
        return 0
    if isinstance(value, bool) or type(value).__name__ == "BoolType":   # celpy's bool is an int
        return 0
    if isinstance(value, int):
        return clamp(int(value))
    if isinstance(value, float) and value.is_integer():
        return clamp(int(value))
    return 0


def delay_ms(config: dict[str, Any], event: dict[str, Any]) -> int:
    """How long a negative factor holds the run's first call back (0 otherwise)."""
    return max(0, -factor_s(config, event)) * 1000
