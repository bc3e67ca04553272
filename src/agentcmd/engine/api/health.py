"""``GET /health`` (always open) and the readiness probe the SDK's test harness uses.

Anyone may ask whether the engine is up, so ``/health`` needs no login; but
the database path and the app URLs it can show say where data lives and
which internal services exist, which the dashboard hides from strangers.
They are shown only to a caller who may look (``may_see_details``):

* an engine bound to loopback (and not run with ``--dashboard-auth``), asked
  from loopback: the local user, who can read the files anyway;
* in production, a caller with the signing key's bearer (the CLI, the SDK).

Everyone else gets ``status`` and ``mode`` (and ``database_error``'s
presence as ``degraded``), enough for a load balancer or a supervisor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from agentcmd.engine.app import Engine


def may_see_details(engine: Engine, request: Request) -> bool:
    """Loopback engine asked from loopback, or (production) a valid signing-key bearer."""
    from agentcmd.webauth.loopback import is_loopback_host

    config = engine.config
    client = request.client.host if request.client is not None else ""
    if is_loopback_host(config.host) and not config.dashboard_auth and is_loopback_host(client):
        return True
    return config.production and bool(request.headers.get("authorization")) and engine.authorized(request)


def routes(engine: Engine) -> list[Route]:
    async def health(request: Request) -> Response:
        problem = engine.database_problem()
        status = "starting" if not engine.ready else "degraded" if problem else "ok"
        body: dict[str, object] = {"status": status, "mode": engine.config.mode}
        if not may_see_details(engine, request):
            return JSONResponse(body, status_code=200 if engine.ready else 503)
        body.update({"database": engine.store_description(), "persistent": engine.config.db_path is not None,
                     "apps": engine.syncer.status if engine.syncer else {}})
        if problem is not None:
            # Still 200: the engine is up and serves what it has; only writes wait for the disk.
            body["database_error"] = problem
        return JSONResponse(body, status_code=200 if engine.ready else 503)

    async def connect_start(request: Request) -> Response:
        return Response(b"", status_code=200)

    return [Route("/health", health, methods=["GET"]),
            Route("/v0/connect/start", connect_start, methods=["POST"])]
