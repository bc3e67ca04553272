"""One plain line per stream event, for ``runs watch`` and ``workflows run --wait`` off a terminal.

The lines sit next to ``cli/stepfeed.py``'s step lines in CI logs, in the
same spirit: a fixed first word, the step id, what happened, then the
detail, two spaces apart, so ``grep 'agent  plan/review  tool'`` finds
every tool call of one step::

    agent  plan/review  session  0b5c...
    agent  plan/review  text  I'll start by reading the failing test.
    agent  plan/review  tool  Bash: ls -la
    agent  plan/review  tool-result ok  Bash
    agent  plan/review  error  rate limited; retrying
    agent  plan/review  result ok  tokens in=1200 out=340 cost=$0.0123 turns=3
    output  build/test  stdout  ===== 12 passed in 0.31s =====
    agent  plan/review  notice  claude does not stream here; running without live output
    agent  plan/review  dropped  1234 earlier events (2.0 MiB) dropped: step cap 4 MiB

Each event is one line: new lines inside a message become spaces and a
long message is cut (``TEXT_CHARS``). ``usage`` events (running totals,
one per turn) give no line: the ``result`` line carries the totals, and
the terminal's status line shows them as they grow. Pure: no I/O here.
"""

from __future__ import annotations

from typing import Any

TEXT_CHARS = 2000
"""A message longer than this is cut (with "...") so one event stays one readable line."""
DETAIL_CHARS = 200


def one_line(text: Any, limit: int = TEXT_CHARS) -> str:
    """``text`` on one line (runs of whitespace, new lines included, become one space), cut at ``limit``."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def usage_text(usage: Any) -> str:
    """``tokens in=1200 out=340 cost=$0.0123 turns=3`` (cached tokens and turns only when there are any)."""
    if not isinstance(usage, dict):
        return ""
    parts = [f"tokens in={_number(usage.get('input_tokens')) or 0} out={_number(usage.get('output_tokens')) or 0}"]
    cached = _number(usage.get("cached_tokens"))
    if cached:
        parts.append(f"cached={cached}")
    cost = _number(usage.get("cost_usd"))
    if cost is not None:
        parts.append(f"cost=${cost:.4f}")
    turns = _number(usage.get("turns"))
    if turns:
        parts.append(f"turns={turns}")
    return " ".join(parts)


def step_of(event: dict[str, Any]) -> str:
    return str(event.get("step_id") or "?")


def source_of(event: dict[str, Any]) -> str:
    """``agent`` for an agent's events, ``output`` for a ``step.cli`` command's lines."""
    return "agent" if event.get("agent") or event.get("kind") != "output" else "output"


def what_and_detail(event: dict[str, Any]) -> tuple[str, str] | None:
    """The event's "what" word(s) and its one-line detail; None for an event that gives no line."""
    kind = str(event.get("kind") or "")
    text = one_line(event.get("text"))
    if kind == "text":
        return "text", text
    if kind == "tool_call":
        tool = str(event.get("tool") or "tool")
        summary = one_line(event.get("summary"), DETAIL_CHARS)
        return "tool", f"{tool}: {summary}" if summary else tool
    if kind == "tool_result":
        detail = str(event.get("tool") or "")
        if event.get("status") == "error" and text:
            detail = f"{detail}: {one_line(text, DETAIL_CHARS)}" if detail else one_line(text, DETAIL_CHARS)
        return f"tool-result {event.get('status') or 'ok'}", detail
    if kind == "result":
        detail = usage_text(event.get("usage"))
        if event.get("status") == "error" and text:
            detail = f"{detail}  error={one_line(text, DETAIL_CHARS)}" if detail else f"error={one_line(text)}"
        return f"result {event.get('status') or 'ok'}", detail
    if kind == "session":
        return "session", str(event.get("session_id") or text)
    if kind == "output":
        return str(event.get("stream") or "stdout"), text
    if kind in ("error", "notice", "dropped"):
        return kind, text
    if kind == "usage":
        return None
    return (kind or "event"), text  # a kind from a newer server: still shown, never lost


def agent_line(event: dict[str, Any]) -> str | None:
    """The plain line for one stream event (see the module doc), or None for one that gives no line."""
    shown = what_and_detail(event)
    if shown is None:
        return None
    what, detail = shown
    line = f"{source_of(event)}  {step_of(event)}  {what}"
    return f"{line}  {detail}" if detail else line
