"""``POST /e/{event_key}``: one event or a list -> ``{"ids": [...], "status": 200}``.

Production checks the key before reading the body: a wrong key is 401 and
nothing is stored. Every answer is a JSON object (the SDK always parses it).
A database that cannot be written (disk full, read-only, locked by another
process) answers 503 with
``Retry-After``: nothing was stored, so the sender keeps the events.
"""

from __future__ import annotations

import hmac
from functools import partial
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.api.errors import json_body
from agentcmd.engine.api.sizes import check_event_sizes
from agentcmd.engine.ingest import parse_events
from agentcmd.engine.store import now_ms
from agentcmd.errors import AgentcmdError, DatabaseLockedError, DatabaseUnwritableError

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands


def key_refusal(commands: Commands, keys: list[bytes], key: bytes) -> Response | None:
    """Production's answer to a missing or wrong event key (nothing is read or stored), else None."""
    if not commands.production:
        return None
    if not keys:
        return JSONResponse({"status": 503, "message": "", "ids": [],
                             "error": "Event keys are required to process events securely"}, 503)
    if not any(hmac.compare_digest(key, k) for k in keys):
        return JSONResponse({"status": 401, "message": "", "ids": [], "error": "Event key not found"}, 401)
    return None


async def send(commands: Commands, keys: list[bytes], request: Request) -> Response:
    refusal = key_refusal(commands, keys, str(request.path_params["key"]).encode())
    if refusal is not None:
        return refusal
    try:
        payload = await json_body(request)
        events = parse_events(payload, now_ms(), request.headers.get("x-inngest-event-id-seed"))
        check_event_sizes(events, int(request.headers.get("content-length") or 0))
    except AgentcmdError as err:
        status = 413 if err.code == "too_large" else 400
        return JSONResponse({"ids": [], "status": status, "error": err.what, "code": err.code,
                             "hint": err.fix or ""}, status)
    try:
        ids = await commands.accept_events(events)
    except (DatabaseUnwritableError, DatabaseLockedError) as err:
        # Nothing was stored: the sender still has the events and can send them again.
        return JSONResponse({"ids": [], "status": 503, "error": f"events not accepted: {err.what}",
                             "code": err.code, "hint": err.fix or ""}, 503, headers={"Retry-After": "5"})
    return JSONResponse({"ids": ids, "status": 200})


def routes(commands: Commands) -> list[Route]:
    keys = [k.encode() for k in commands.config.event_keys]
    return [Route("/e/{key}", partial(send, commands, keys), methods=["POST"])]
