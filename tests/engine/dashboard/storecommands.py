"""A store-only stand-in for the engine's command facade, for dashboard tests with no engine process.

Events and cancels are stored (they run when an engine next starts);
replay, pause and re-sync say they need the engine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from agentcmd.engine.ingest import parse_events
from agentcmd.engine.store import Store, now_ms
from agentcmd.errors import UnavailableError

if TYPE_CHECKING:
    from agentcmd.engine.commands import PauseChange
    from agentcmd.engine.flow.bulkcancel import CancelRequest
    from agentcmd.engine.flow.replay import ReplayRequest
    from agentcmd.engine.flow.resume import Resumed

T = TypeVar("T")


class StoreCommands:
    """``ActionCommands`` (``engine/dashboard/actions.py``) on the database alone."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._store.read(fn)

    async def cancel_run(self, run_id: str, reason: str) -> bool | None:
        return await self._store.cancel_run(run_id, reason)

    async def send_events(self, events: list[dict[str, Any]]) -> list[str]:
        """Validate and store events with their dispatch rows, in one commit."""
        return await self._store.insert_events(parse_events(events, now_ms()))

    async def sync_url(self, url: str) -> str | None:
        raise UnavailableError("this engine cannot re-sync apps from the dashboard",
                               "restart the app, or PUT its serve URL")

    async def replay_function(self, ref: str, request: ReplayRequest) -> list[tuple[str, str]] | None:
        raise UnavailableError("this engine cannot replay runs from the dashboard",
                               f"POST /v1/functions/{ref}/replay on the engine's REST API")

    async def set_paused(self, ref: str, pause: bool) -> PauseChange | None:
        verb = "pause" if pause else "unpause"
        raise UnavailableError(f"this engine cannot {verb} functions from the dashboard",
                               f"run 'agentcmd functions {verb} {ref}', or POST /v1/functions/{ref}/{verb}")

    async def cancel_runs_of(self, ref: str, request: CancelRequest, reason: str) -> list[str] | None:
        """Stored at once, as a single cancel is (an app watching the run sees it Cancelled)."""
        from agentcmd.engine.flow.bulkcancel import cancel_runs

        return await cancel_runs(self._store, ref, request, now_ms(), reason)

    async def resume_run(self, run_id: str, data: dict[str, Any] | None = None) -> Resumed:
        raise UnavailableError("this engine cannot resume runs from the dashboard",
                               f"POST /v1/runs/{run_id}/resume on the engine's REST API")
