"""agentcmd: durable AI-coding workflows on an Inngest-compatible engine.

Kept import-light on purpose: ``agentcmd --help`` must not pay for the web
stack. ``define_workflow`` is resolved lazily on first attribute access.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Approval", "QuestionTimedOut", "__version__", "define_workflow", "on_event"]


def __getattr__(name: str) -> Any:
    if name == "define_workflow":
        from agentcmd.workflows.define import define_workflow

        return define_workflow
    if name == "on_event":
        from agentcmd.workflows.triggers import on_event

        return on_event
    if name in ("Approval", "QuestionTimedOut"):
        from agentcmd.workflows import questions

        return getattr(questions, name)
    raise AttributeError(f"module 'agentcmd' has no attribute {name!r}")
