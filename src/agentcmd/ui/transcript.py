"""A run's kept stream as a readable transcript: what the run page renders on load. Pure; no I/O.

The events are the stream store's (``agentcmd.workflows.streamlog``, one
shape for every agent and ``step.cli``). The page shows them as a reader
wants them: assistant messages as text, each tool call folded (its name
and one-line summary; the result's status joins the call it answers, by
``tool_id``), errors highlighted, agentcmd's notices, a command's output
lines, and the marker where a cap dropped older events. Usage reports are
left out (the run's totals show them). The browser script
(``web/static/dashboard.js``, ``transcriptEntry``) builds the same entries
from the live ``agent`` events, so a page reloaded mid-run looks the same
as one that watched it grow.
"""

from __future__ import annotations

from typing import Any

MAX_ENTRIES = 1000
"""Events rendered on load at most (the latest); the raw events link has every kept one."""
MAX_TEXT = 20_000
"""Characters of one entry's text shown; the raw events have the rest."""

SHOWN = ("session", "text", "tool_call", "tool_result", "error", "result", "output", "notice", "dropped")


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"… ({len(text) - MAX_TEXT} more characters)"


def entry(event: dict[str, Any]) -> dict[str, Any] | None:
    """One event as a transcript entry, or None for what the transcript leaves out (usage, unknown kinds)."""
    kind = event.get("kind")
    if kind not in SHOWN:
        return None
    out: dict[str, Any] = {
        "kind": kind, "seq": event.get("seq"), "step_id": str(event.get("step_id") or ""),
        "agent": event.get("agent") or "", "text": _clip(event.get("text")), "tool": str(event.get("tool") or ""),
        "tool_id": event.get("tool_id") or "", "summary": _clip(event.get("summary")),
        "status": event.get("status") or "", "stream": event.get("stream") or "", "result": None,
    }
    if kind == "session":
        out["text"] = f"session {event.get('session_id') or ''}".strip()
    return out


def entries(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcript of ``events`` (in seq order): tool results folded into their calls, step changes marked.

    Each entry has ``new_step`` true where the step differs from the entry before,
    so the page can head each step's part of the transcript.
    """
    out: list[dict[str, Any]] = []
    calls: dict[tuple[str, str], dict[str, Any]] = {}
    last_step: str | None = None
    for event in events:
        item = entry(event)
        if item is None:
            continue
        if item["kind"] == "tool_result" and item["tool_id"]:
            call = calls.get((item["step_id"], item["tool_id"]))
            if call is not None:
                call["result"] = item
                continue
        item["new_step"] = item["step_id"] != last_step
        last_step = item["step_id"]
        if item["kind"] == "tool_call" and item["tool_id"]:
            calls[(item["step_id"], item["tool_id"])] = item
        out.append(item)
    return out
