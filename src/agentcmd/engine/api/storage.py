"""``GET /v1/storage`` and ``POST /v1/storage/prune``: the database's size and retention, over REST.

``GET`` answers ``{"data": {"size_bytes", "free_bytes", "runs", "oldest_run",
"retention", "last_prune", ...}}`` (``retention.storage_view``). ``POST``
prunes now, one pass in small transactions like the background pruner
(``engine/retention.py``), and answers what went (or, with ``dry_run``,
would go) and the space given back; ``agentcmd engine prune`` calls it when
an engine holds the database. Production requires the bearer token, like
every REST route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.api.errors import error_response, json_body
from agentcmd.engine.api.guard import guard
from agentcmd.engine.retention import prune_request
from agentcmd.errors import InputError

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands


async def get_storage(commands: Commands, request: Request) -> Response:
    return JSONResponse({"data": await commands.storage()})


async def prune(commands: Commands, request: Request) -> Response:
    try:
        body = await json_body(request) if await request.body() else {}
        older_than_s, dry_run = prune_request(body, commands.config.retention_s)
    except InputError as exc:
        return error_response(exc, 400)
    report = await commands.prune(older_than_s, dry_run)
    return JSONResponse({"data": report.as_dict()})


def routes(commands: Commands) -> list[Route]:
    return [Route("/v1/storage", guard(commands, get_storage), methods=["GET"]),
            Route("/v1/storage/prune", guard(commands, prune), methods=["POST"])]
