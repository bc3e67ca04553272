"""Reload the project's workflows in the running app server, without a restart.

``POST /api/reload`` (called by ``agentcmd dev``'s file watcher, by
``agentcmd start`` on SIGHUP, and by ``agentcmd workflows reload``):

1. discover the workflows again (``workflows.loading.discover``: every
   file is imported afresh), in a thread so the event loop keeps serving;
2. swap the functions the SDK's serve endpoint dispatches to. A request
   already running keeps the function object it started with, so steps in
   flight finish undisturbed; the next call of a run uses the new code;
3. sync: ``PUT`` our own serve URL, so the SDK registers the new list with
   the engine (an app with no workflow left has nothing to register: the
   SDK refuses an empty list, so the sync is skipped and said so);
4. only then swap what the app API and the views list, so a workflow shown
   by ``agentcmd workflows list`` is one the engine already matches.

Reloads are serialised; the answer says what changed and whether the sync
worked. The SDK keeps its functions in a ``CommHandler`` created inside
``inngest.fast_api.serve``: it is found through the serve route (and the
app refuses to start with a clear error if a new SDK moved it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import inngest
from fastapi import APIRouter, FastAPI, Request
from inngest._internal import comm_lib

from agentcmd.errors import AgentcmdError
from agentcmd.server import SERVE_PATH
from agentcmd.workflows.loading import Discovered, discover

log = logging.getLogger("agentcmd.server.reload")
SYNC_TIMEOUT_SECONDS = 30.0

router = APIRouter(prefix="/api")


class Reloader:
    """Owns the swap: the SDK handler's functions, the served list, the discovered workflows."""

    def __init__(self, app: FastAPI, functions: list[inngest.Function[Any]], project_dir: Path | None,
                 entry_points: bool, host: str = "127.0.0.1") -> None:
        self.app = app
        self.host = host                    # the bind host: the sync names the serve URL the supervisor uses
        self.functions = functions          # the very list create_app's /health counts
        self.project_dir = project_dir
        self.entry_points = entry_points
        self.handler = _serve_handler(app)
        self._lock = asyncio.Lock()

    def serve_url(self, port: int) -> str:
        """Our serve URL as ``agentcmd dev``/``start`` gives it to the engine, whatever address the caller used."""
        from agentcmd.supervisor.launch import connect_host

        return f"http://{connect_host(self.host)}:{port}{SERVE_PATH}"

    async def reload(self, serve_url: str) -> dict[str, Any]:
        async with self._lock:
            return await self._reload(serve_url)

    async def _reload(self, serve_url: str) -> dict[str, Any]:
        found: Discovered = await asyncio.to_thread(discover, self.project_dir, entry_points=self.entry_points)
        for err in found.errors:
            log.error("workflow not loaded: %s", err)
        current: Discovered = self.app.state.discovered
        before, after = set(current.workflows), set(found.workflows)
        fresh: list[inngest.Function[Any]] = list(found.workflows.values())
        # One assignment each: a request that already looked its function up keeps it.
        self.handler._fns = {fn.get_id(): fn for fn in fresh}
        self.functions[:] = fresh
        synced, sync_error = False, None
        from agentcmd.server.connectmode import workers_serve_workflows

        connect = workers_serve_workflows()
        if fresh and not connect:   # connect mode: the worker's reload is its sync
            sync_error = await _sync(serve_url)
            synced = sync_error is None
        # In place: create_app's closures (health) and the API read this object.
        vars(current).update(vars(found))
        added, removed = sorted(after - before), sorted(before - after)
        result = {"workflows": sorted(after), "added": added, "removed": removed,
                  "errors": [e.to_json() for e in found.errors], "synced": synced, "sync_error": sync_error,
                  "worker_mode": "connect" if connect else "http"}
        if sync_error:
            log.warning("reloaded %d workflows but the sync with the engine failed: %s", len(fresh), sync_error)
        else:
            log.info("reloaded %d workflows (added: %s; removed: %s)%s", len(fresh),
                     ", ".join(added) or "none", ", ".join(removed) or "none",
                     "" if fresh else "; nothing to sync")
        return result


async def _sync(serve_url: str) -> str | None:
    """PUT the SDK's serve endpoint (its out-of-band sync); None when the engine took the functions."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=SYNC_TIMEOUT_SECONDS) as http:
            resp = await http.put(serve_url, content=b"")
    except httpx.HTTPError as exc:
        return f"could not reach the app's own serve URL {serve_url} ({type(exc).__name__})"
    try:
        body = json.loads(resp.text or "{}")
    except ValueError:
        body = {}
    # The SDK answers 200 even when the engine refused: the engine's answer is in the body.
    failed = isinstance(body, dict) and bool(body.get("error"))
    if resp.status_code >= 300 or failed:
        message = (body.get("error") or body.get("message")) if isinstance(body, dict) else None
        return f"status {resp.status_code}: {str(message or resp.text)[:300]}"
    return None


def _serve_handler(app: FastAPI) -> Any:
    for route in app.router.routes:
        if getattr(route, "path", None) != SERVE_PATH:
            continue
        for cell in getattr(getattr(route, "endpoint", None), "__closure__", None) or ():
            if isinstance(cell.cell_contents, comm_lib.CommHandler):
                return cell.cell_contents
    raise AgentcmdError(f"cannot find the SDK's serve handler at {SERVE_PATH} to reload workflows into",
                        "install the inngest SDK version pinned in agentcmd's pyproject.toml")


@router.post("/reload")
async def reload_workflows(request: Request) -> dict[str, Any]:
    reloader: Reloader = request.app.state.reloader
    server = request.scope.get("server")
    port = server[1] if server and server[1] else request.url.port or 80
    return {"data": await reloader.reload(reloader.serve_url(int(port)))}


def attach_reload(app: FastAPI, functions: list[inngest.Function[Any]], project_dir: Path | None, *,
                  entry_points: bool = True, host: str = "127.0.0.1") -> None:
    """Hook for ``create_app``: after the SDK's ``serve``, before the API router."""
    app.state.reloader = Reloader(app, functions, project_dir, entry_points, host)
    app.include_router(router)
