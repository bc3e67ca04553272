"""``POST /v1/functions/{id}/pause``, ``/unpause`` and ``/replay``: commands on one function.

The function is named by its slug (``<app>-<fn>``) or its uuid. What a
pause does is ``flow/pause.py``'s story, what a replay does ``flow/replay.py``'s;
here are only the HTTP answers. Production requires the bearer token.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.api.errors import error_response, json_body
from agentcmd.engine.api.guard import guard
from agentcmd.engine.flow.replay import ReplayInputError, parse_request
from agentcmd.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands


async def change_pause(commands: Commands, pause: bool, request: Request) -> Response:
    if not commands.authorized(request):
        return JSONResponse({"error": "unauthorized: missing or wrong bearer token", "code": "unauthorized",
                             "hint": "send 'Authorization: Bearer <signing key>'"}, 401)
    ref = request.path_params["function_id"]
    change = await commands.set_paused(ref, pause)
    if change is None:
        return JSONResponse({"error": f"no function {ref!r}", "code": "not_found",
                             "hint": "list functions with GET /v1/functions (use its slug or id)"}, 404)
    return JSONResponse({"data": {"function_id": change.slug, "paused": pause, "changed": change.changed,
                                  "resumed_calls": change.resumed}})


async def replay(commands: Commands, request: Request) -> Response:
    ref = request.path_params["function_id"]
    fn = commands.function(ref)
    if fn is None:
        return error_response(NotFoundError(f"no function {ref!r}",
                                            "list functions with GET /v1/functions (use its slug or id)"))
    try:
        req = parse_request(await json_body(request))
    except InputError as exc:
        return error_response(exc, 400)
    try:
        pairs = await commands.replay(fn, req)
    except ReplayInputError as exc:   # more runs in the range than one replay may start
        return error_response(exc)
    return JSONResponse({"data": {"replayed": len(pairs), "run_ids": [new for new, _ in pairs]}})


def routes(commands: Commands) -> list[Route]:
    return [Route("/v1/functions/{function_id}/pause", partial(change_pause, commands, True), methods=["POST"]),
            Route("/v1/functions/{function_id}/unpause", partial(change_pause, commands, False), methods=["POST"]),
            Route("/v1/functions/{function_id}/replay", guard(commands, replay), methods=["POST"])]
