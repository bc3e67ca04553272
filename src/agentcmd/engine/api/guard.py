"""``guard(commands, handler)``: a route handler bound to the facade, behind the bearer check.

Production requires ``Authorization: Bearer <signing key>`` on the REST,
GraphQL and function-command routes; this is the one place that checks it
and answers 401 the same way for all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from agentcmd.engine.api.errors import error_response, unauthorized

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands

Handler = Callable[[Any, Request], Awaitable[Response]]


async def _guarded(handler: Handler, commands: Commands, request: Request) -> Response:
    if not commands.authorized(request):
        return error_response(unauthorized("missing or wrong bearer token"))
    return await handler(commands, request)


def guard(commands: Commands, handler: Handler) -> Any:
    """``handler`` bound to the facade, behind the bearer check (production)."""
    return partial(_guarded, handler, commands)
