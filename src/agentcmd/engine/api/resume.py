"""``POST /v1/runs/{id}/resume``: resume a Failed or Cancelled run from its first step that did not complete.

The body is optional: none or ``{}`` resumes with the same event,
``{"data": {...}}`` with that event data instead. What a resume does is
``flow/resume.py``'s story; here are only the HTTP answers: 201
``{"data": {"run_id", "resumed_from", "kept_steps"}}``, 404 for an unknown
run, 409 ``not_resumable`` for a run that is not Failed or Cancelled (or
was resumed already), 400 ``invalid_resume`` for a body it cannot use.
Production requires the bearer token, like every REST route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.api.errors import error_response, json_body
from agentcmd.engine.api.guard import guard
from agentcmd.engine.flow.resume import parse_body
from agentcmd.errors import AgentcmdError, InputError

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands


async def resume(commands: Commands, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        raw = await request.body()
        data = parse_body(await json_body(request) if raw.strip() else None)
    except InputError as exc:
        return error_response(exc, 400)
    try:
        resumed = await commands.resume_run(run_id, data)
    except AgentcmdError as exc:
        return error_response(exc)
    return JSONResponse({"data": resumed.api()}, status_code=201)


def routes(commands: Commands) -> list[Route]:
    return [Route("/v1/runs/{run_id}/resume", guard(commands, resume), methods=["POST"])]
