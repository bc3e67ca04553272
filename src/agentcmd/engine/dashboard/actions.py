"""``EngineActions``: the dashboard's buttons, on the engine's own operations.

The engine app passes in how it accepts events (the same path as
``POST /e/{key}``, so a dashboard-sent event wakes the worker like any other)
how it syncs an app URL (``Syncer.sync_one``) and how it replays a
function's runs (``flow.replay.replay_runs``, the code behind
``POST /v1/functions/{id}/replay``) and how it pauses and unpauses a
function (``flow.pause.set_paused``, the code behind
``POST /v1/functions/{id}/pause`` and ``/unpause``); cancelling is the store's
``cancel_run``, the same command as ``DELETE /v1/runs/{id}``. Nothing here
touches the executor.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from agentcmd.engine.dashboard.replayform import nothing_to_replay
from agentcmd.engine.flow.replay import ReplayRequest
from agentcmd.engine.store import now_ms
from agentcmd.engine.store import queries as store_queries
from agentcmd.engine.store.models import NewEvent
from agentcmd.errors import InputError, NotFoundError, UnavailableError

T = TypeVar("T")
AcceptEvents = Callable[[list[dict[str, Any]]], Awaitable[list[str]]]
SyncUrl = Callable[[str], Awaitable[str | None]]
ReplayRuns = Callable[[str, ReplayRequest], Awaitable[list[tuple[str, str]]]]
SetPaused = Callable[[str, bool], Awaitable[tuple[bool, int]]]  # (slug, pause) -> (changed, calls resumed)


class ActionStore(Protocol):
    """The part of the engine's ``Store`` the buttons use."""

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
    async def cancel_run(self, run_id: str, reason: str) -> bool | None: ...
    async def insert_events(self, events: list[NewEvent]) -> list[str]: ...


def rerun_event(original: dict[str, Any]) -> dict[str, Any]:
    """The event to send again: same name, data and user, a fresh id and time.

    The original ``id`` is dropped on purpose: it is the sender's idempotency
    key, and keeping it would make the engine treat the rerun as a duplicate.
    """
    event = {"name": original.get("name"), "data": copy.deepcopy(original.get("data") or {})}
    if isinstance(original.get("user"), dict) and original["user"]:
        event["user"] = copy.deepcopy(original["user"])
    return event


async def store_accept(store: ActionStore, events: list[dict[str, Any]]) -> list[str]:
    """Default ``accept``: validate and store events with their dispatch rows, in one commit."""
    from agentcmd.engine.ingest import parse_events

    return await store.insert_events(parse_events(events, now_ms()))


class EngineActions:
    """``DashboardActions`` on an engine store plus the engine's accept and sync callables."""

    def __init__(self, store: ActionStore, accept: AcceptEvents | None = None, sync_url: SyncUrl | None = None,
                 replay: ReplayRuns | None = None, set_paused: SetPaused | None = None) -> None:
        self._store = store
        self._accept = accept
        self._sync_url = sync_url
        self._replay = replay
        self._set_paused = set_paused

    async def _send(self, events: list[dict[str, Any]]) -> list[str]:
        if self._accept is not None:
            return await self._accept(events)
        return await store_accept(self._store, events)

    async def cancel_run(self, run_id: str) -> None:
        result = await self._store.cancel_run(run_id, "cancelled from the dashboard")
        if result is None:
            raise NotFoundError(f"no run with id {run_id!r}", "pick a run from the runs page")
        if result is False:
            raise InputError(f"run {run_id} has already ended", "only Queued or Running runs can be cancelled")

    async def rerun(self, run_id: str) -> str:
        events = await self._store.read(lambda c: store_queries.run_events(c, run_id))
        if events is None:
            raise NotFoundError(f"no run with id {run_id!r}", "pick a run from the runs page")
        if not events or not isinstance(events[0], dict) or not events[0].get("name"):
            raise InputError(f"run {run_id} has no triggering event to send again",
                             "runs started by a cron schedule or an invoke cannot be rerun this way")
        ids = await self._send([rerun_event(events[0])])
        return ids[0]

    async def resync_app(self, app_id: str) -> None:
        apps = await self._store.read(store_queries.list_apps)
        app = next((a for a in apps if a["id"] == app_id), None)
        if app is None:
            raise NotFoundError(f"no app with id {app_id!r}", "pick an app from the apps page")
        if self._sync_url is None:
            raise UnavailableError("this engine cannot re-sync apps from the dashboard",
                                   "restart the app, or PUT its serve URL")
        error = await self._sync_url(app["url"])
        if error:
            raise UnavailableError(f"re-sync of {app_id} at {app['url']} failed: {error}",
                                   "check that the app is running and reachable from the engine")

    async def send_event(self, name: str, data: dict[str, Any]) -> list[str]:
        return await self._send([{"name": name, "data": data}])

    async def replay(self, slug: str, request: ReplayRequest) -> list[tuple[str, str]]:
        """Replay through the engine; a range with no matching run is an error here (the form says so)."""
        if self._replay is None:
            raise UnavailableError("this engine cannot replay runs from the dashboard",
                                   f"POST /v1/functions/{slug}/replay on the engine's REST API")
        pairs = await self._replay(slug, request)
        if not pairs:
            raise nothing_to_replay(slug, request)
        return pairs


    async def _pause(self, slug: str, pause: bool) -> tuple[bool, int]:
        if self._set_paused is None:
            verb = "pause" if pause else "unpause"
            raise UnavailableError(f"this engine cannot {verb} functions from the dashboard",
                                   f"run 'agentcmd functions {verb} {slug}', or POST /v1/functions/{slug}/{verb}")
        return await self._set_paused(slug, pause)

    async def pause_function(self, slug: str) -> bool:
        changed, _ = await self._pause(slug, True)
        return changed

    async def unpause_function(self, slug: str) -> tuple[bool, int]:
        return await self._pause(slug, False)
