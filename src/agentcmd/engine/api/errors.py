"""``AgentcmdError`` -> ``{"error", "code", "hint"}`` with its HTTP status; the cause is logged apart."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agentcmd.errors import AgentcmdError, AuthError
from agentcmd.httpedge import jsonbody
from agentcmd.httpedge.redact import redact_path

log = logging.getLogger("agentcmd.engine.api")


def error_response(err: AgentcmdError, status: int | None = None) -> JSONResponse:
    return JSONResponse(err.to_json(), status_code=status or err.http_status)


async def agentcmd_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentcmdError)
    if exc.http_status >= 500:
        log.warning("%s %s: %s", request.method, redact_path(request.url.path), exc)
    return error_response(exc)


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    """A bug, not bad input: log the traceback, answer JSON (SDK clients always parse the body)."""
    log.error("%s %s failed", request.method, redact_path(request.url.path), exc_info=exc)
    return JSONResponse({"error": "internal error in the engine (see its log)", "code": "internal_error",
                         "hint": "report it with the engine log", "ids": [], "status": 500}, status_code=500)


async def json_body(request: Request) -> Any:
    """The body as strict JSON (``httpedge.jsonbody``): any malformed body is an InputError (400), never a 500."""
    return jsonbody.loads(await request.body())


def unauthorized(what: str) -> AuthError:
    return AuthError(what, "send 'Authorization: Bearer <signing key>' (the key given to 'agentcmd engine start')")
