"""REST ``/v1`` (docs/architecture.md) and the SDK's ``/v0/runs`` payload endpoints.

All reads go through ``store.queries``, run by the command facade's
``read``; a cancel is the facade's ``cancel_run``. Each handler is a
module-level function bound to the facade (``guard``), which also checks
the bearer token: production requires it on every route here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.api.errors import error_response
from agentcmd.engine.api.guard import guard
from agentcmd.engine.api.runfilter import run_filter
from agentcmd.engine.protocol import iso_ms
from agentcmd.engine.store import queries
from agentcmd.engine.store import resume as resume_store
from agentcmd.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands, Reads
    from agentcmd.engine.connect.view import WorkerView

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
    """One run as ``GET /v1/runs/{id}`` answers it: plus ``replay_of``, the run it replays (or null),
    ``resume_of``, the run it resumes (or null), and ``resumed_as``, the runs resuming it (flow/resume.py)."""
    if run is not None:
        run["replay_of"] = queries.replay_of(conn, run["run_id"])
        run["resume_of"] = resume_store.resume_of(conn, run["run_id"])
        run["resumed_as"] = resume_store.run_resumes(conn, run["run_id"])
    return run


async def list_events(store: Reads, request: Request) -> Response:
    name = request.query_params.get("name")
    cursor = request.query_params.get("cursor")
    limit = _int(request, "limit", 20)
    return _ok(await store.read(lambda c: queries.api_events(c, name, limit, cursor)))


async def get_event(store: Reads, request: Request) -> Response:
    event_id = request.path_params["event_id"]
    event = await store.read(lambda c: queries.get_event(c, event_id))
    if event is None:
        return error_response(NotFoundError(f"no event with id {event_id}", "list events with GET /v1/events"))
    return _ok(event)


async def event_runs(store: Reads, request: Request) -> Response:
    event_id = request.path_params["event_id"]
    return _ok(await store.read(lambda c: queries.event_runs(c, event_id)))


async def list_runs(store: Reads, request: Request) -> Response:
    filt, before = run_filter(request)
    limit = _int(request, "limit", 20)
    runs, cursor = await store.read(lambda c: queries.api_runs(c, filt, before, limit))
    return _ok(runs, next_cursor=cursor)


async def get_run(store: Reads, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    run = await store.read(lambda c: _with_replay_of(c, queries.get_run(c, run_id)))
    if run is None:
        return error_response(NotFoundError(f"no run with id {run_id}", "list runs with GET /v1/runs"))
    return _ok(run)


async def run_steps(store: Reads, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    if await store.read(lambda c: queries.get_run(c, run_id)) is None:
        return error_response(NotFoundError(f"no run with id {run_id}", "list runs with GET /v1/runs"))
    return _ok(await store.read(lambda c: queries.run_steps(c, run_id)))


async def run_history(store: Reads, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    return _ok(await store.read(lambda c: queries.run_history(c, run_id)))


async def cancel_run(commands: Commands, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    result = await commands.cancel_run(run_id, "cancelled via the API")
    if result is None:
        return error_response(NotFoundError(f"no run with id {run_id}", "list runs with GET /v1/runs"))
    return _ok(await commands.read(lambda c: queries.get_run(c, run_id)))


async def list_apps(commands: Commands, request: Request) -> Response:
    """Each app, with ``workers``: its connect workers (engine/connect; [] for an app served over HTTP)."""
    apps = await commands.read(queries.list_apps)
    workers = commands.connect_workers()
    for app in apps:
        app["workers"] = [worker_json(w) for w in workers if app["id"] in w.app_ids]
    return _ok(apps)


def worker_json(worker: WorkerView) -> dict[str, Any]:
    """One connect worker as ``GET /v1/apps`` shows it (times in RFC 3339, like the rest of ``/v1``)."""
    return {"connection_id": worker.connection_id, "instance_id": worker.instance_id,
            "app_ids": list(worker.app_ids), "address": worker.address,
            "connected_at": iso_ms(worker.connected_at_ms),
            "last_heartbeat_at": iso_ms(worker.last_heartbeat_ms),
            "in_flight": worker.in_flight, "capacity": worker.capacity, "status": worker.status, "sdk": worker.sdk}


async def list_functions(store: Reads, request: Request) -> Response:
    return _ok(await store.read(queries.api_functions))


async def function_skips(store: Reads, request: Request) -> Response:
    ref = request.path_params["function_id"]
    limit = _int(request, "limit", 20)
    if not 1 <= limit <= 200:
        raise InputError(f"query parameter limit={limit} is out of range", "pass limit=1 to limit=200")
    skips = await store.read(lambda c: queries.function_skips(c, ref, limit))
    if skips is None:
        return error_response(NotFoundError(f"no function {ref!r}",
                                            "list functions with GET /v1/functions (use its slug or id)"))
    return _ok(skips)


async def _v0_payload(query: Callable[[sqlite3.Connection, str], Any], store: Reads, request: Request) -> Response:
    """The SDK's ``/v0/runs/{id}/...`` reads: the payload itself, or 410 for a run that is gone."""
    run_id = request.path_params["run_id"]
    payload = await store.read(lambda c: query(c, run_id))
    if payload is None:
        return JSONResponse({"error": f"run {run_id} not found"}, 410)
    return JSONResponse(payload)


v0_actions = partial(_v0_payload, queries.run_memos)   # the run's step memos, for an SDK that fetches them
v0_batch = partial(_v0_payload, queries.run_events)    # the run's events, likewise


async def v0_cancel(commands: Commands, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    result = await commands.cancel_run(run_id, "cancelled via the API")
    if result is None:
        return JSONResponse({"error": f"run {run_id} not found"}, 404)
    return JSONResponse({})


def routes(commands: Commands) -> list[Route]:
    return [
        Route("/v1/events", guard(commands, list_events), methods=["GET"]),
        Route("/v1/events/{event_id}", guard(commands, get_event), methods=["GET"]),
        Route("/v1/events/{event_id}/runs", guard(commands, event_runs), methods=["GET"]),
        Route("/v1/runs", guard(commands, list_runs), methods=["GET"]),
        Route("/v1/runs/{run_id}", guard(commands, get_run), methods=["GET"]),
        Route("/v1/runs/{run_id}", guard(commands, cancel_run), methods=["DELETE"]),
        Route("/v1/runs/{run_id}/steps", guard(commands, run_steps), methods=["GET"]),
        Route("/v1/runs/{run_id}/history", guard(commands, run_history), methods=["GET"]),
        Route("/v1/apps", guard(commands, list_apps), methods=["GET"]),
        Route("/v1/functions", guard(commands, list_functions), methods=["GET"]),
        Route("/v1/functions/{function_id}/skips", guard(commands, function_skips), methods=["GET"]),
        Route("/v0/runs/{run_id}/actions", guard(commands, v0_actions), methods=["GET"]),
        Route("/v0/runs/{run_id}/batch", guard(commands, v0_batch), methods=["GET"]),
        Route("/v0/runs/{run_id}", guard(commands, v0_cancel), methods=["DELETE"]),
    ]
