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

from functools import partial
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands


def may_see_details(commands: Commands, request: Request) -> bool:
    """Loopback engine asked from loopback, or (production) a valid signing-key bearer."""
    from agentcmd.webauth.loopback import is_loopback_host

    config = commands.config
    client = request.client.host if request.client is not None else ""
    if is_loopback_host(config.host) and not config.dashboard_auth and is_loopback_host(client):
        return True
    return config.production and bool(request.headers.get("authorization")) and commands.authorized(request)


async def health(commands: Commands, request: Request) -> Response:
    ready = commands.ready
    body: dict[str, object] = {"status": commands.health_status(), "mode": commands.mode}
    if not may_see_details(commands, request):
        return JSONResponse(body, status_code=200 if ready else 503)
    body.update({"database": commands.store_description(), "persistent": commands.config.db_path is not None,
                 "apps": commands.app_status()})
    problem = commands.database_problem()
    if problem is not None:
        # Still 200: the engine is up and serves what it has; only writes wait for the disk.
        body["database_error"] = problem
    return JSONResponse(body, status_code=200 if ready else 503)


def routes(commands: Commands) -> list[Route]:
    return [Route("/health", partial(health, commands), methods=["GET"])]
