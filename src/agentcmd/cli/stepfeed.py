"""Plain step lines for ``agentcmd workflows run --wait`` off a terminal (CI logs).

Each poll of the run view is compared with the previous one; a step that
appears or starts again gives one ``started`` line, a step that ends one
line with its verb and duration::

    step started   build/test  phase=build
    step completed build/test  3.2s
    step failed    build/lint  0.4s  error=CommandFailedError: `ruff` exited with code 1
    step interrupted build/test  5.0s

The step id is the one the workflow gave (``<phase>/<id>`` inside a phase),
so ``grep 'step failed'`` finds what broke. Pure: no I/O here.
"""

from __future__ import annotations

from typing import Any

ENDED = {"Completed": "completed", "Failed": "failed", "Cancelled": "cancelled", "Interrupted": "interrupted"}
ERROR_CHARS = 200


def _seconds(step: dict[str, Any]) -> str:
    ms = step.get("elapsed_ms")
    return f"{ms / 1000:.1f}s" if isinstance(ms, int | float) and not isinstance(ms, bool) else "-"


def _error(step: dict[str, Any]) -> str:
    err = step.get("error")
    if isinstance(err, dict):
        err = f"{err.get('name') or 'Error'}: {err.get('message') or ''}"
    text = " ".join(str(err or "").split())
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + "..."


def step_key(step: dict[str, Any]) -> str:
    return str(step.get("step_id") or step.get("name") or step.get("id") or "?")


def started_line(step: dict[str, Any]) -> str:
    return f"step {'started':<9} {step_key(step)}  phase={step.get('phase') or '-'}"


def ended_line(step: dict[str, Any]) -> str:
    verb = ENDED.get(str(step.get("status")), str(step.get("status") or "ended").lower())
    line = f"step {verb:<9} {step_key(step)}  {_seconds(step)}"
    if verb in ("failed", "interrupted", "cancelled") and _error(step):
        line += f"  error={_error(step)}"
    return line


class StepFeed:
    """Remembers each step's last status; ``update(run)`` returns the lines for what changed."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def update(self, run: dict[str, Any]) -> list[str]:
        lines: list[str] = []
        for step in run.get("steps") or []:
            key, status = step_key(step), str(step.get("status") or "")
            before = self._seen.get(key)
            if before == status:
                continue
            if before is None or (before in ENDED and status not in ENDED):
                lines.append(started_line(step))  # new, or running again after an interruption/failure
            if status in ENDED:
                lines.append(ended_line(step))
            self._seen[key] = status
        return lines
