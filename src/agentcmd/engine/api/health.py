"""``GET /health`` (always open) and the readiness probe the SDK's test harness uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from agentcmd.engine.app import Engine


def routes(engine: Engine) -> list[Route]:
    async def health(request: Request) -> Response:
        body = {"status": "ok" if engine.ready else "starting", "mode": engine.config.mode,
                "database": engine.store_description(), "persistent": engine.config.db_path is not None,
                "apps": engine.syncer.status if engine.syncer else {}}
        return JSONResponse(body, status_code=200 if engine.ready else 503)

    async def connect_start(request: Request) -> Response:
        return Response(b"", status_code=200)

    return [Route("/health", health, methods=["GET"]),
            Route("/v0/connect/start", connect_start, methods=["POST"])]
