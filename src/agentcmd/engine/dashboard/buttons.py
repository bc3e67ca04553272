"""What the dashboard's buttons need from the engine: the ``DashboardActions`` Protocol.

``forms.py`` posts to these; ``actions.py`` (``EngineActions``) implements
them on the engine's commands, so the forms can be tested on a real SQLite
file without a worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agentcmd.engine.flow.bulkcancel import CancelRequest
    from agentcmd.engine.flow.replay import ReplayRequest


class DashboardActions(Protocol):
    """The dashboard's buttons. Each raises an ``AgentcmdError`` (NotFoundError, ...) on bad input."""

    async def cancel_run(self, run_id: str) -> None: ...
    async def rerun(self, run_id: str) -> str:
        """Send the run's triggering event again; returns the new event id."""
        ...
    async def resync_app(self, app_id: str) -> None: ...
    async def resume_run(self, run_id: str) -> str:
        """Resume a Failed/Cancelled run from its first step that did not complete; the new run id."""
        ...
    async def send_event(self, name: str, data: dict[str, Any]) -> list[str]: ...
    async def replay(self, slug: str, request: ReplayRequest) -> list[tuple[str, str]]:
        """Replay the function's runs matching ``request``; (new run id, original run id) pairs."""
        ...
    async def cancel_function_runs(self, slug: str, request: CancelRequest) -> int:
        """Cancel the function's Queued/Running runs in ``request``'s range, in one go; how many."""
        ...
    async def pause_function(self, slug: str) -> bool:
        """Pause the function; False if it already was."""
        ...
    async def unpause_function(self, slug: str) -> tuple[bool, int]:
        """Unpause the function -> (it was paused, calls held by the pause that are due again)."""
        ...
