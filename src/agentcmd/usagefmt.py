"""How tokens and cost read for people: one format for ``runs show``, the pages and the API views.

Standard library only, so the CLI can import it without loading the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def tokens(n: Any) -> str:
    """12345 -> "12.3k", 2500000 -> "2.5M"."""
    if isinstance(n, bool) or not isinstance(n, int | float):
        return "-"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.1f}k"
    return str(int(n))


def cost(usd: Any) -> str:
    """US dollars: 4 decimals under $0.10 (small steps), else 2; "-" when unknown."""
    if isinstance(usd, bool) or not isinstance(usd, int | float):
        return "-"
    return f"${usd:.4f}" if usd < 0.1 else f"${usd:.2f}"


def summary(usage: Mapping[str, Any] | None) -> str:
    """One line: "in 12.3k (cached 4.0k) / out 1.2k tokens, $0.0312, 3 turns"."""
    if not usage:
        return ""
    text = f"in {tokens(usage.get('input_tokens'))}"
    if usage.get("cached_tokens"):
        text += f" (cached {tokens(usage.get('cached_tokens'))})"
    text += f" / out {tokens(usage.get('output_tokens'))} tokens, {cost(usage.get('cost_usd'))}"
    if usage.get("turns"):
        text += f", {usage['turns']} turn{'s' if usage['turns'] != 1 else ''}"
    if usage.get("cost_unknown"):
        text += f" ({usage['cost_unknown']} attempt(s) without a price)"
    return text
