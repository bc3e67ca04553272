"""Trigger matching: event names (with ``*`` wildcards), CEL expressions, cron schedules.

CEL goes through the ``cel-python`` library (imported on first use: it
costs ~80 ms). Compiled programs are cached by source text. An expression
that fails to compile or evaluate (e.g. a missing field) counts as "no
match" rather than an error: that is how the Go server treats them, and a
user's typo must not stop the engine.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

log = logging.getLogger("agentcmd.engine.triggers")


def name_matches(pattern: str, name: str) -> bool:
    """``app/user.created`` matches itself; ``app/*`` matches any name starting ``app/``."""
    if pattern == name:
        return True
    if "*" not in pattern:
        return False
    import fnmatch
    return fnmatch.fnmatchcase(name, pattern)


@lru_cache(maxsize=1024)
def _program(expression: str) -> Any:
    import celpy

    env = celpy.Environment()
    return env.program(env.compile(expression))


def evaluate(expression: str, variables: dict[str, Any]) -> Any:
    """Evaluate CEL with JSON-like ``variables``; raises ValueError on any CEL error."""
    import celpy

    try:
        program = _program(expression)
        result = program.evaluate({k: celpy.json_to_cel(v) for k, v in variables.items()})  # type: ignore[attr-defined]
    except Exception as exc:  # celpy raises many unrelated types
        raise ValueError(f"CEL {expression!r}: {exc}") from None
    if isinstance(result, Exception):
        raise ValueError(f"CEL {expression!r}: {result}")
    return result


def check_expression(expression: str) -> str | None:
    """None if ``expression`` compiles, else the compiler's message (for sync validation)."""
    try:
        _program(expression)
    except Exception as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def holds(expression: str | None, variables: dict[str, Any]) -> bool:
    """True if there is no expression, or it evaluates to true."""
    if not expression:
        return True
    try:
        return bool(evaluate(expression, variables))
    except ValueError as exc:
        log.debug("expression does not hold: %s", exc)
        return False


def evaluate_key(expression: str, variables: dict[str, Any]) -> str | None:
    """A flow-control key (concurrency, debounce, singleton, idempotency) as a string."""
    try:
        value = evaluate(expression, variables)
    except ValueError:
        return None
    return str(value)


def next_cron_ms(spec: str, after_ms: int) -> int:
    """Next fire time strictly after ``after_ms`` for ``[TZ=Zone ]m h dom mon dow``."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from croniter import croniter

    text = spec.strip()
    tz: Any = UTC
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        zone, _, text = text.partition(" ")
        tz = ZoneInfo(zone.split("=", 1)[1])
    start = datetime.fromtimestamp(after_ms / 1000, tz)
    nxt = croniter(text.strip(), start).get_next(datetime)
    return int(nxt.timestamp() * 1000)


def check_cron(spec: str) -> str | None:
    try:
        next_cron_ms(spec, 0)
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return None
