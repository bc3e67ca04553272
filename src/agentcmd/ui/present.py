"""What a workflow run page shows, computed from the app API's run view. Pure; no I/O.

A run view (``agentcmd.server.runs.run_view``) has ``phases`` (declared
order), ``phase`` (the running step's phase, else the latest phase with a
step) and ``steps`` with their phase (the running one too, from the app's
step records). From that: each phase's state (done, current, failed,
pending), each step's headline (the command, the agent, the artifact) and the tail of what
it printed, and the run's artifacts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

TAIL_LINES = 40
TERMINAL = ("Completed", "Failed", "Cancelled")


def _ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return round(when.timestamp() * 1000)


def duration_ms(start: Any, end: Any) -> int | None:
    a, b = _ms(start), _ms(end)
    return None if a is None or b is None else max(0, b - a)


def tail(text: Any, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text`` (what a terminal would still show)."""
    if not isinstance(text, str) or not text:
        return ""
    parts = text.rstrip("\n").split("\n")
    cut = len(parts) - lines
    return ("… " + str(cut) + " earlier lines\n" if cut > 0 else "") + "\n".join(parts[-lines:])


def step_detail(step: dict[str, Any]) -> dict[str, Any]:
    """Kind, headline, output tail and exit code of one step, from its output's shape."""
    out = step.get("output")
    measured = duration_ms(step.get("started_at"), step.get("ended_at"))
    own = out.get("duration_s") if isinstance(out, dict) else None
    if isinstance(own, int | float) and not isinstance(own, bool) and own * 1000 > (measured or 0):
        measured = round(own * 1000)  # measured where the step ran; the engine only sees the result arrive
    elapsed = step.get("elapsed_ms")
    if measured is None and isinstance(elapsed, int) and not isinstance(elapsed, bool):
        measured = elapsed  # a running step: its time so far (the app's step record)
    detail: dict[str, Any] = {"kind": "value", "headline": "", "tail": "", "exit_code": None,
                              "duration_ms": measured}
    if isinstance(out, dict) and "command" in out:
        streams = "\n".join(s.rstrip("\n") for s in (out.get("stdout"), out.get("stderr")) if isinstance(s, str) and s)
        detail.update(kind="command", headline=str(out["command"]), tail=tail(streams), exit_code=out.get("exit_code"))
    elif isinstance(out, dict) and "agent" in out:
        detail.update(kind="agent", headline=str(out["agent"]) + (f" ({out['model']})" if out.get("model") else ""),
                      tail=tail(out.get("text")), exit_code=out.get("exit_code"))
    elif isinstance(out, dict) and "artifact" in out:
        detail.update(kind="artifact", headline=f"{out['artifact']} ({out.get('bytes', 0)} bytes)")
    elif isinstance(out, dict) and "log" in out:
        detail.update(kind="log", headline="", tail=tail(out.get("log")))
    return detail


def phase_progress(view: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per declared phase (plus "other" for steps outside any), in order, with a state."""
    phases: list[str] = list(view.get("phases") or [])
    steps: list[dict[str, Any]] = list(view.get("steps") or [])
    status = view.get("status")
    current = view.get("phase")
    seen = [p for p in phases if any(s.get("phase") == p for s in steps)]
    last_seen = phases.index(seen[-1]) if seen else -1
    out: list[dict[str, Any]] = []
    for i, name in enumerate(phases):
        mine = [s for s in steps if s.get("phase") == name]
        if status == "Completed" or i < last_seen:
            state = "done" if mine or status == "Completed" else "skipped"
        elif name == current and status == "Failed":
            state = "failed"
        elif name == current and status == "Cancelled":
            state = "cancelled"
        elif name == current:
            state = "current"
        else:
            state = "pending"
        out.append({"name": name, "state": state, "steps": mine})
    other = [s for s in steps if s.get("phase") not in phases]
    if other:
        out.append({"name": "other steps", "state": "done" if status in TERMINAL else "current", "steps": other})
    return out


def artifacts(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's artifacts, from its artifact steps' outputs."""
    found: list[dict[str, Any]] = []
    for step in view.get("steps") or []:
        out = step.get("output")
        if isinstance(out, dict) and isinstance(out.get("artifact"), str):
            found.append({"name": out["artifact"], "bytes": out.get("bytes"), "phase": out.get("phase")})
    return found


def running_steps(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps running now, each with its time so far (the page's clock counts on from it)."""
    out: list[dict[str, Any]] = []
    for step in view.get("steps") or []:
        if step.get("status") != "Running":
            continue
        elapsed = step.get("elapsed_ms")
        if not isinstance(elapsed, int) or isinstance(elapsed, bool):
            elapsed = None
        out.append({"id": step.get("id"), "name": step.get("name"), "elapsed_ms": elapsed})
    return out
