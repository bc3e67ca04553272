"""``POST /e/{event_key}``: one event or a list -> ``{"ids": [...], "status": 200}``.

Production checks the key before reading the body: a wrong key is 401 and
nothing is stored. Every answer is a JSON object (the SDK always parses it).
A database that cannot be written (disk full, read-only, locked by another
process) answers 503 with
``Retry-After``: nothing was stored, so the sender keeps the events.
"""

from __future__ import annotations

import hmac
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
    from agentcmd.engine.app import Engine


def routes(engine: Engine) -> list[Route]:
    keys = [k.encode() for k in engine.config.event_keys]

    async def send(request: Request) -> Response:
        key = str(request.path_params["key"]).encode()
        if engine.config.production:
            if not keys:
                return JSONResponse({"status": 503, "message": "", "ids": [],
                                     "error": "Event keys are required to process events securely"}, 503)
            if not any(hmac.compare_digest(key, k) for k in keys):
                return JSONResponse({"status": 401, "message": "", "ids": [], "error": "Event key not found"}, 401)
        try:
            payload = await json_body(request)
            events = parse_events(payload, now_ms(), request.headers.get("x-inngest-event-id-seed"))
            check_event_sizes(events, int(request.headers.get("content-length") or 0))
        except AgentcmdError as err:
            status = 413 if err.code == "too_large" else 400
            return JSONResponse({"ids": [], "status": status, "error": err.what, "code": err.code,
                                 "hint": err.fix or ""}, status)
        try:
            if len(events) <= engine.worker.free_slots:
                # Dispatch rows come back leased and go straight to the worker:
                # durable (a crash requeues them at start) without a queue round trip.
                ids, leased = await engine.store.accept_events(events, engine.executor.lease_until())
                engine.worker.dispatch_now(leased)
            else:   # a flood: let the worker lease them at its own pace
                ids = await engine.store.insert_events(events)
                engine.worker.wake()
        except (DatabaseUnwritableError, DatabaseLockedError) as err:
            # Nothing was stored: the sender still has the events and can send them again.
            return JSONResponse({"ids": [], "status": 503, "error": f"events not accepted: {err.what}",
                                 "code": err.code, "hint": err.fix or ""}, 503, headers={"Retry-After": "5"})
        return JSONResponse({"ids": ids, "status": 200})

    return [Route("/e/{key}", send, methods=["POST"])]
