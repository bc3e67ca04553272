"""``GET /metrics``: the engine's Prometheus metrics (``engine/metrics.py``; docs/running.md "Metrics").

Who may scrape (``metrics_open``): an engine bound to loopback (and not
run with ``--dashboard-auth``) answers anyone who can reach it, like its
dashboard; beyond loopback a production engine wants the REST API's bearer
(``Authorization: Bearer <signing key>``, ``guard``'s check). The numbers
name functions and say how busy the engine is, which a stranger on the
network has no business reading. A dev engine has no keys and is open, as
its REST API is.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentcmd.engine.api.errors import error_response, unauthorized
from agentcmd.webauth.loopback import is_loopback_host

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands


def metrics_open(commands: Commands) -> bool:
    """Loopback bind without ``--dashboard-auth``: no bearer needed."""
    return is_loopback_host(commands.config.host) and not commands.config.dashboard_auth


async def metrics(commands: Commands, request: Request) -> Response:
    if not metrics_open(commands) and not commands.authorized(request):
        return error_response(unauthorized("missing or wrong bearer token: beyond loopback /metrics needs "
                                           "'Authorization: Bearer <signing key>'"))
    return Response(await commands.metrics_text(), media_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def routes(commands: Commands) -> list[Route]:
    return [Route("/metrics", partial(metrics, commands), methods=["GET"])]
