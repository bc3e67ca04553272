"""Pausing a function: ``POST /v1/functions/{id}/pause`` and ``/unpause``.

As in Inngest ("pause immediately"): while a function is paused, events
are still stored but do not trigger it (the skip is recorded in
``flow_skips`` with reason ``paused``), its cron ticks start nothing, and
runs already in progress stop before their next SDK call: the call is
parked like one waiting on a full concurrency key (``concurrency.py``,
key ``paused:<slug>``, limit 0). Unpausing resumes those runs where they
stopped; events received meanwhile are not replayed (Inngest says the same).

The paused state is the ``flow_paused`` table (migration 0004; its rows:
``store/flow.py``), so it survives restarts; the gate keeps a copy in
memory for the hot path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.store import now_ms

if TYPE_CHECKING:
    from agentcmd.engine.app import Engine

PAUSED_PREFIX = "paused:"


def paused_key(slug: str) -> str:
    return PAUSED_PREFIX + slug




def find_slug(engine: Engine, ref: str) -> str | None:
    """The slug of the active function named by ``ref``: its slug (``<app>-<fn>``) or its uuid."""
    fn = engine.registry.get(ref)
    if fn is not None:
        return fn.slug
    return next((f.slug for f in engine.registry.functions.values() if f.uuid == ref), None)


async def set_paused(engine: Engine, slug: str, pause: bool) -> tuple[bool, int]:
    """Pause or unpause through the executor's gate -> (changed, calls resumed).

    The one code path for the REST routes below and the dashboard's buttons.
    """
    gate = engine.executor.limits
    if pause:
        return await gate.pause(slug, now_ms()), 0
    return await gate.unpause(slug)


def routes(engine: Engine) -> list[Route]:
    """The two REST routes; the function is named by its slug (``<app>-<fn>``) or its uuid."""

    async def change(request: Request, pause: bool) -> Response:
        if not engine.authorized(request):
            return JSONResponse({"error": "unauthorized: missing or wrong bearer token", "code": "unauthorized",
                                 "hint": "send 'Authorization: Bearer <signing key>'"}, 401)
        ref = request.path_params["function_id"]
        slug = find_slug(engine, ref)
        if slug is None:
            return JSONResponse({"error": f"no function {ref!r}", "code": "not_found",
                                 "hint": "list functions with GET /v1/functions (use its slug or id)"}, 404)
        changed, resumed = await set_paused(engine, slug, pause)
        return JSONResponse({"data": {"function_id": slug, "paused": pause, "changed": changed,
                                      "resumed_calls": resumed}})

    async def pause_fn(request: Request) -> Response:
        return await change(request, True)

    async def unpause_fn(request: Request) -> Response:
        return await change(request, False)

    return [Route("/v1/functions/{function_id}/pause", pause_fn, methods=["POST"]),
            Route("/v1/functions/{function_id}/unpause", unpause_fn, methods=["POST"])]
