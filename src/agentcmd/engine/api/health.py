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
        problem = engine.database_problem()
        status = "starting" if not engine.ready else "degraded" if problem else "ok"
        body = {"status": status, "mode": engine.config.mode,
                "database": engine.store_description(), "persistent": engine.config.db_path is not None,
                "apps": engine.syncer.status if engine.syncer else {}}
        if problem is not None:
            # Still 200: the engine is up and serves what it has; only writes wait for the disk.
            body["database_error"] = problem
        return JSONResponse(body, status_code=200 if engine.ready else 503)

    async def connect_start(request: Request) -> Response:
        return Response(b"", status_code=200)

    return [Route("/health", health, methods=["GET"]),
            Route("/v0/connect/start", connect_start, methods=["POST"])]
