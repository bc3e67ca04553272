"""``POST /v1/cancellations``: cancel a function's running or queued runs in bulk, as Inngest's REST API does.

The body is Inngest's: ``app_id``, ``function_id`` (the function's id in
its app, or its full slug or uuid), ``started_after`` and ``started_before``
(RFC 3339, each optional here). What is cancelled and how is
``flow/bulkcancel.py``'s story; this module answers HTTP. The answer
carries the count (``cancelled``) and the run ids. Production requires
the bearer token, like every REST route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from ulid import ULID

from agentcmd.engine.api.errors import error_response, json_body
from agentcmd.engine.api.guard import guard
from agentcmd.engine.flow.bulkcancel import parse_body
from agentcmd.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands
    from agentcmd.engine.functions import Function

REASON = "cancelled in bulk via the API"


def find_function(commands: Commands, app_id: str, function_id: str) -> Function | None:
    """The active function of ``app_id`` named ``function_id`` (its id in the app, slug or uuid)."""
    for ref in (f"{app_id}-{function_id}", function_id):
        fn = commands.function(ref)
        if fn is not None and fn.app_id == app_id:
            return fn
    return None


async def create_cancellation(commands: Commands, request: Request) -> Response:
    try:
        body = await json_body(request)
        app_id, function_id, req = parse_body(body)
    except InputError as exc:
        return error_response(exc, 400)
    fn = find_function(commands, app_id, function_id)
    if fn is None:
        return error_response(NotFoundError(f"no function {function_id!r} in app {app_id!r}",
                                            "list functions with GET /v1/functions (use its app_id and id)"))
    run_ids = await commands.cancel_function_runs(fn, req, REASON)
    return JSONResponse({"data": {"id": str(ULID()), "app_id": app_id, "function_id": fn.slug,
                                  "started_after": body.get("started_after"),
                                  "started_before": body.get("started_before"),
                                  "cancelled": len(run_ids), "run_ids": run_ids}})


def routes(commands: Commands) -> list[Route]:
    return [Route("/v1/cancellations", guard(commands, create_cancellation), methods=["POST"])]
