"""``EngineActions``: the dashboard's buttons, on the engine's command facade.

Every button is a command of ``engine.commands.Commands``, the same one
behind the REST API: a sent or rerun event takes the path of ``POST /e``
(stored, the worker woken), cancelling is the command behind
``DELETE /v1/runs/{id}``, Replay the one behind
``POST /v1/functions/{id}/replay``, Pause/Unpause the one behind
``POST /v1/functions/{id}/pause`` and ``/unpause``, Cancel running runs the
one behind ``POST /v1/cancellations``, Resume the one behind
``POST /v1/runs/{id}/resume``, Re-sync the app syncer's
PUT. This module only words the answers for a person at the dashboard (which
page to pick, what to do instead). Nothing here touches the executor.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from agentcmd.engine.dashboard.replayform import nothing_to_replay
from agentcmd.engine.store import queries as store_queries
from agentcmd.errors import InputError, NotFoundError, UnavailableError

if TYPE_CHECKING:
    from agentcmd.engine.commands import PauseChange
    from agentcmd.engine.flow.bulkcancel import CancelRequest
    from agentcmd.engine.flow.replay import ReplayRequest
    from agentcmd.engine.flow.resume import Resumed

T = TypeVar("T")


class ActionCommands(Protocol):
    """The commands the buttons use: ``engine.commands.Commands`` (tests stand in a store-only one)."""

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
    async def cancel_run(self, run_id: str, reason: str) -> bool | None: ...
    async def send_events(self, events: list[dict[str, Any]]) -> list[str]: ...
    async def sync_url(self, url: str) -> str | None: ...
    async def replay_function(self, ref: str, request: ReplayRequest) -> list[tuple[str, str]] | None: ...
    async def set_paused(self, ref: str, pause: bool) -> PauseChange | None: ...
    async def cancel_runs_of(self, ref: str, request: CancelRequest, reason: str) -> list[str] | None: ...
    async def resume_run(self, run_id: str, data: dict[str, Any] | None = None) -> Resumed: ...


def rerun_event(original: dict[str, Any]) -> dict[str, Any]:
    """The event to send again: same name, data and user, a fresh id and time.

    The original ``id`` is dropped on purpose: it is the sender's idempotency
    key, and keeping it would make the engine treat the rerun as a duplicate.
    """
    event = {"name": original.get("name"), "data": copy.deepcopy(original.get("data") or {})}
    if isinstance(original.get("user"), dict) and original["user"]:
        event["user"] = copy.deepcopy(original["user"])
    return event


class EngineActions:
    """``DashboardActions`` on the engine's commands."""

    def __init__(self, commands: ActionCommands) -> None:
        self._commands = commands

    async def cancel_run(self, run_id: str) -> None:
        result = await self._commands.cancel_run(run_id, "cancelled from the dashboard")
        if result is None:
            raise NotFoundError(f"no run with id {run_id!r}", "pick a run from the runs page")
        if result is False:
            raise InputError(f"run {run_id} has already ended", "only Queued or Running runs can be cancelled")

    async def rerun(self, run_id: str) -> str:
        events = await self._commands.read(lambda c: store_queries.run_events(c, run_id))
        if events is None:
            raise NotFoundError(f"no run with id {run_id!r}", "pick a run from the runs page")
        if not events or not isinstance(events[0], dict) or not events[0].get("name"):
            raise InputError(f"run {run_id} has no triggering event to send again",
                             "runs started by a cron schedule or an invoke cannot be rerun this way")
        ids = await self._commands.send_events([rerun_event(events[0])])
        return ids[0]

    async def resume_run(self, run_id: str) -> str:
        resumed = await self._commands.resume_run(run_id)
        return resumed.run_id

    async def resync_app(self, app_id: str) -> None:
        apps = await self._commands.read(store_queries.list_apps)
        app = next((a for a in apps if a["id"] == app_id), None)
        if app is None:
            raise NotFoundError(f"no app with id {app_id!r}", "pick an app from the apps page")
        error = await self._commands.sync_url(app["url"])
        if error:
            raise UnavailableError(f"re-sync of {app_id} at {app['url']} failed: {error}",
                                   "check that the app is running and reachable from the engine")

    async def send_event(self, name: str, data: dict[str, Any]) -> list[str]:
        return await self._commands.send_events([{"name": name, "data": data}])

    async def replay(self, slug: str, request: ReplayRequest) -> list[tuple[str, str]]:
        """Replay through the engine; a range with no matching run is an error here (the form says so)."""
        pairs = await self._commands.replay_function(slug, request)
        if pairs is None:
            raise NotFoundError(f"no active function {slug!r}",
                                "pick a function from the apps page (an archived function cannot run again)")
        if not pairs:
            raise nothing_to_replay(slug, request)
        return pairs

    async def cancel_function_runs(self, slug: str, request: CancelRequest) -> int:
        cancelled = await self._commands.cancel_runs_of(slug, request, "cancelled in bulk from the dashboard")
        if cancelled is None:
            raise NotFoundError(f"no active function {slug!r}",
                                "pick a function from the apps page (an archived function has no runs to cancel)")
        return len(cancelled)

    async def _pause(self, slug: str, pause: bool) -> tuple[bool, int]:
        change = await self._commands.set_paused(slug, pause)
        if change is None:
            raise NotFoundError(f"no active function {slug!r}",
                                "pick a function from the apps page (an archived function cannot be paused)")
        return change.changed, change.resumed

    async def pause_function(self, slug: str) -> bool:
        changed, _ = await self._pause(slug, True)
        return changed

    async def unpause_function(self, slug: str) -> tuple[bool, int]:
        return await self._pause(slug, False)
