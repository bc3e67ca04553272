"""Sync-time checks of a function's flow-control declarations.

Every CEL expression a FunctionConfig carries is compiled when the app
syncs, so a typo fails the sync with the function id, the field and the
parser's message, instead of silently matching nothing at run time (the
evaluators in ``triggers`` treat a failing expression as "no match" so a
bad event cannot stop the engine; a bad *declaration* must be loud).

``check_function(cfg)`` returns the first problem as text (None if fine);
``apps.parse_function`` turns it into an ``InputError``, so ``/fn/register``
answers 400 and the app is recorded as failed (``store.apps.record_sync_error_txn``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from agentcmd.engine import triggers
from agentcmd.engine.flow.concurrency import MAX_LIMITS, SCOPES
from agentcmd.errors import InputError

if TYPE_CHECKING:
    from agentcmd.engine.functions import Function


def expressions(cfg: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field path, expression) for every CEL expression in a FunctionConfig."""
    for i, trig in enumerate(cfg.get("triggers") or []):
        if isinstance(trig, dict) and isinstance(trig.get("expression"), str) and trig["expression"]:
            yield f"triggers[{i}].expression", trig["expression"]
    for i, entry in enumerate(cfg.get("concurrency") or []):
        if isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry["key"]:
            yield f"concurrency[{i}].key", entry["key"]
    for name in ("throttle", "rateLimit", "debounce", "batchEvents", "singleton"):
        block = cfg.get(name)
        if isinstance(block, dict) and isinstance(block.get("key"), str) and block["key"]:
            yield f"{name}.key", block["key"]
    batch = cfg.get("batchEvents")
    if isinstance(batch, dict) and isinstance(batch.get("if"), str) and batch["if"]:
        yield "batchEvents.if", batch["if"]
    prio = cfg.get("priority")
    if isinstance(prio, dict) and isinstance(prio.get("run"), str) and prio["run"]:
        yield "priority.run", prio["run"]
    if isinstance(cfg.get("idempotency"), str) and cfg["idempotency"]:
        yield "idempotency", cfg["idempotency"]
    for i, cancel in enumerate(cfg.get("cancel") or []):
        if isinstance(cancel, dict) and isinstance(cancel.get("if"), str) and cancel["if"]:
            yield f"cancel[{i}].if", cancel["if"]


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_function(cfg: dict[str, Any]) -> str | None:
    """The first thing wrong with a function's expressions or limits, as text; None if fine."""
    for where, expr in expressions(cfg):
        if err := triggers.check_expression(expr):
            return f"invalid {where} {expr!r}: {err}"
    limits = cfg.get("concurrency")
    if limits is not None:
        if not isinstance(limits, list):
            return "concurrency must be a list of {limit, key?, scope?}"
        if len(limits) > MAX_LIMITS:
            return f"concurrency has {len(limits)} entries; at most {MAX_LIMITS} are allowed"
        for i, entry in enumerate(limits):
            if not isinstance(entry, dict) or not _positive_int(entry.get("limit")):
                return f"concurrency[{i}].limit must be a positive integer"
            scope = entry.get("scope") or "fn"
            if scope not in SCOPES:
                return f"concurrency[{i}].scope {scope!r} is not one of {', '.join(SCOPES)}"
    for name in ("throttle", "rateLimit"):
        block = cfg.get(name)
        if isinstance(block, dict) and not _positive_int(block.get("limit")):
            return f"{name}.limit must be a positive integer"
    return None


def check_functions(functions: list[Function]) -> None:
    """Raise ``InputError`` naming the first function whose declaration is wrong (sync time only).

    Not part of ``apps.parse_function``: configs already stored by an older
    engine must still load at startup.
    """
    for fn in functions:
        if problem := check_function(fn.config):
            raise InputError(f"function {fn.slug!r}: {problem}",
                             "fix the function's declaration in the app and sync it again")
