"""``POST /fn/register``: the SDK registers its app (out-of-band sync, reference §4.2)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine import registry
from agentcmd.engine.api.errors import json_body
from agentcmd.engine.store import queue
from agentcmd.errors import InputError

if TYPE_CHECKING:
    from agentcmd.engine.app import Engine


def routes(engine: Engine) -> list[Route]:
    async def register(request: Request) -> Response:
        if not engine.authorized(request):
            return JSONResponse({"error": "unauthorized: missing or wrong bearer token",
                                 "code": "unauthorized", "hint": "the SDK must use the engine's signing key"}, 401)
        expected = request.headers.get("x-inngest-expected-server-kind")
        if expected and expected != engine.server_kind:
            return JSONResponse({"error": f"Expected server kind {expected}, got {engine.server_kind}"}, 400)
        try:
            body = await json_body(request)
            result = await registry.register(engine.store, engine.registry, body)
        except InputError as err:
            # The app's registration is wrong: 400. A store problem (disk full, locked) is ours, not the
            # app's: it goes to the engine's error handler, which answers with its status (503).
            return JSONResponse({"error": err.what, "code": err.code, "hint": err.fix or ""}, 400)
        if engine.syncer is not None and engine.syncer.registered(body.get("url") if isinstance(body, dict) else None):
            now = engine.clock()  # the events held for this first registration are matched now
            await engine.store.write(lambda c: queue.release_held_txn(c, now))
        engine.worker.wake()
        # "functions": how many the engine now matches for this app (agentcmd's supervisor checks it).
        return JSONResponse({"ok": True, "modified": result.modified, "app_id": result.app_id,
                             "functions": result.functions, "sync_id": str(uuid.uuid4())})

    return [Route("/fn/register", register, methods=["POST", "PUT"])]
