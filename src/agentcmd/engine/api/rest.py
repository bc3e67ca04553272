"""REST ``/v1`` (docs/architecture.md) and the SDK's ``/v0/runs`` payload endpoints.

All reads go through ``store.queries``. Production requires the bearer
token on every route here.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.api.errors import error_response, unauthorized
from agentcmd.engine.api.runfilter import run_filter
from agentcmd.engine.store import queries
from agentcmd.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from agentcmd.engine.app import Engine


def _ok(data: Any, **metadata: Any) -> JSONResponse:
    meta = {"fetched_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), **metadata}
    return JSONResponse({"data": data, "metadata": meta})


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"query parameter {name}={raw!r} is not an integer", f"pass {name}=<number>") from None


def _with_replay_of(conn: sqlite3.Connection, run: dict[str, Any] | None) -> dict[str, Any] | None:
    """One run as ``GET /v1/runs/{id}`` answers it: plus ``replay_of``, the run it replays (or null)."""
    if run is not None:
        run["replay_of"] = queries.replay_of(conn, run["run_id"])
    return run


def routes(engine: Engine) -> list[Route]:
    store = engine.store

    def guard(handler: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            if not engine.authorized(request):
                return error_response(unauthorized("missing or wrong bearer token"))
            return await handler(request)  # type: ignore[no-any-return]
        return wrapped

    async def list_events(request: Request) -> Response:
        name = request.query_params.get("name")
        cursor = request.query_params.get("cursor")
        limit = _int(request, "limit", 20)
        return _ok(await store.read(lambda c: queries.api_events(c, name, limit, cursor)))

    async def get_event(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        event = await store.read(lambda c: queries.get_event(c, event_id))
        if event is None:
            return error_response(NotFoundError(f"no event with id {event_id}", "list events with GET /v1/events"))
        return _ok(event)

    async def event_runs(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        return _ok(await store.read(lambda c: queries.event_runs(c, event_id)))

    async def list_runs(request: Request) -> Response:
        filt, before = run_filter(request)
        limit = _int(request, "limit", 20)
        runs, cursor = await store.read(lambda c: queries.api_runs(c, filt, before, limit))
        return _ok(runs, next_cursor=cursor)

    async def get_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run = await store.read(lambda c: _with_replay_of(c, queries.get_run(c, run_id)))
        if run is None:
            return error_response(NotFoundError(f"no run with id {run_id}", "list runs with GET /v1/runs"))
        return _ok(run)

    async def run_steps(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if await store.read(lambda c: queries.get_run(c, run_id)) is None:
            return error_response(NotFoundError(f"no run with id {run_id}", "list runs with GET /v1/runs"))
        return _ok(await store.read(lambda c: queries.run_steps(c, run_id)))

    async def run_history(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        return _ok(await store.read(lambda c: queries.run_history(c, run_id)))

    async def cancel_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        result = await store.cancel_run(run_id, "cancelled via the API")
        if result is None:
            return error_response(NotFoundError(f"no run with id {run_id}", "list runs with GET /v1/runs"))
        engine.worker.wake()
        return _ok(await store.read(lambda c: queries.get_run(c, run_id)))

    async def list_apps(request: Request) -> Response:
        return _ok(await store.read(queries.list_apps))

    async def list_functions(request: Request) -> Response:
        return _ok(await store.read(queries.api_functions))

    async def function_skips(request: Request) -> Response:
        ref = request.path_params["function_id"]
        limit = _int(request, "limit", 20)
        if not 1 <= limit <= 200:
            raise InputError(f"query parameter limit={limit} is out of range", "pass limit=1 to limit=200")
        skips = await store.read(lambda c: queries.function_skips(c, ref, limit))
        if skips is None:
            return error_response(NotFoundError(f"no function {ref!r}",
                                                "list functions with GET /v1/functions (use its slug or id)"))
        return _ok(skips)

    async def v0_actions(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        memos = await store.read(lambda c: queries.run_memos(c, run_id))
        if memos is None:
            return JSONResponse({"error": f"run {run_id} not found"}, 410)
        return JSONResponse(memos)

    async def v0_batch(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        events = await store.read(lambda c: queries.run_events(c, run_id))
        if events is None:
            return JSONResponse({"error": f"run {run_id} not found"}, 410)
        return JSONResponse(events)

    async def v0_cancel(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        result = await store.cancel_run(run_id, "cancelled via the API")
        if result is None:
            return JSONResponse({"error": f"run {run_id} not found"}, 404)
        return JSONResponse({})

    return [
        Route("/v1/events", guard(list_events), methods=["GET"]),
        Route("/v1/events/{event_id}", guard(get_event), methods=["GET"]),
        Route("/v1/events/{event_id}/runs", guard(event_runs), methods=["GET"]),
        Route("/v1/runs", guard(list_runs), methods=["GET"]),
        Route("/v1/runs/{run_id}", guard(get_run), methods=["GET"]),
        Route("/v1/runs/{run_id}", guard(cancel_run), methods=["DELETE"]),
        Route("/v1/runs/{run_id}/steps", guard(run_steps), methods=["GET"]),
        Route("/v1/runs/{run_id}/history", guard(run_history), methods=["GET"]),
        Route("/v1/apps", guard(list_apps), methods=["GET"]),
        Route("/v1/functions", guard(list_functions), methods=["GET"]),
        Route("/v1/functions/{function_id}/skips", guard(function_skips), methods=["GET"]),
        Route("/v0/runs/{run_id}/actions", guard(v0_actions), methods=["GET"]),
        Route("/v0/runs/{run_id}/batch", guard(v0_batch), methods=["GET"]),
        Route("/v0/runs/{run_id}", guard(v0_cancel), methods=["DELETE"]),
    ]
