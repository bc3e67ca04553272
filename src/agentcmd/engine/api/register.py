"""``POST /fn/register``: the SDK registers its app (out-of-band sync, reference §4.2)."""

from __future__ import annotations

import uuid
from functools import partial
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.api.errors import json_body
from agentcmd.errors import InputError

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands


async def register(commands: Commands, request: Request) -> Response:
    if not commands.authorized(request):
        return JSONResponse({"error": "unauthorized: missing or wrong bearer token",
                             "code": "unauthorized", "hint": "the SDK must use the engine's signing key"}, 401)
    expected = request.headers.get("x-inngest-expected-server-kind")
    if expected and expected != commands.server_kind:
        return JSONResponse({"error": f"Expected server kind {expected}, got {commands.server_kind}"}, 400)
    try:
        result = await commands.register_app(await json_body(request))
    except InputError as err:
        # The app's registration is wrong: 400. A store problem (disk full, locked) is ours, not the
        # app's: it goes to the engine's error handler, which answers with its status (503).
        return JSONResponse({"error": err.what, "code": err.code, "hint": err.fix or ""}, 400)
    # "functions": how many the engine now matches for this app (agentcmd's supervisor checks it).
    return JSONResponse({"ok": True, "modified": result.modified, "app_id": result.app_id,
                         "functions": result.functions, "sync_id": str(uuid.uuid4())})


def routes(commands: Commands) -> list[Route]:
    return [Route("/fn/register", partial(register, commands), methods=["POST", "PUT"])]
