"""A stand-in for the app API's run routes, served over real HTTP, to drive the CLI's live follower.

It answers what ``agentcmd runs watch`` and ``workflows run --wait`` call,
in the shapes of the app API (``GET /api/runs/{id}``, ``POST
/api/workflows/{id}/runs``) and of its live stream (``GET
/api/runs/{id}/live``: ``agent`` events with ``id: seq``, ``run`` events,
``end``), and lets a test decide what each connection of the stream does:
end cleanly after some events (as the server does every 300 s), drop the
connection mid-stream, or stay silent with keepalives only. Every
connection's ``Last-Event-ID`` is recorded, and ``live=False`` makes it an
app server from before the live stream (no such route: 404).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from agentcmd.web.live import SSE_HEADERS, SseMessage, last_event_id, sse_response

RUN_ID = "01RUNLIVE"


def step(name: str, status: str, phase: str | None = "plan", elapsed_ms: int | None = 1200,
         error: Any = None) -> dict[str, Any]:
    return {"step_id": name, "name": name, "phase": phase, "status": status, "elapsed_ms": elapsed_ms,
            "started_at": "2026-12-04T12:00:00Z", **({"error": error} if error else {})}


def run_data(status: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"run_id": RUN_ID, "workflow": "review", "status": status, "phase": "plan", "steps": steps, **extra}


@dataclass
class Connection:
    """What one ``/live`` connection sends after the stored events past Last-Event-ID.

    ``upto``: send the agent events with seq <= upto; ``then``: "end" (run event, then ``end``),
    "close" (a clean end of stream), "drop" (the connection breaks) or "quiet" (keepalives only).
    """

    upto: int
    then: str = "end"


@dataclass
class LiveApp:
    events: list[dict[str, Any]]
    running: dict[str, Any]
    final: dict[str, Any]
    connections: list[Connection] = field(default_factory=lambda: [Connection(10**9)])
    live: bool = True
    polls_until_final: int = 0
    """Without the live route: the run view is ``running`` this many times, then ``final``."""
    bearer: str | None = None
    seen_last_ids: list[str | None] = field(default_factory=list)
    gets: int = 0
    started: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        if self.live:
            return self.final if len(self.seen_last_ids) >= len(self.connections) else self.running
        self.gets += 1
        return self.running if self.gets <= self.polls_until_final else self.final

    def build(self) -> FastAPI:
        app = FastAPI()

        app.add_middleware(BearerGuard, live=self)

        @app.post("/api/workflows/{workflow_id}/runs", status_code=202)
        async def start(workflow_id: str, request: Request) -> dict[str, Any]:
            self.started.append({"workflow": workflow_id, **(await request.json())})
            return {"data": {"run_id": RUN_ID, "event_id": "01EVENT"}}

        @app.get("/api/runs/{run_id}")
        async def get_run(run_id: str) -> Any:
            if run_id != RUN_ID:
                return JSONResponse({"error": f"no run {run_id}", "code": "not_found",
                                     "hint": "list runs with 'agentcmd runs list'"}, 404)
            return {"data": self.view()}

        if self.live:
            @app.get("/api/runs/{run_id}/live")
            async def live(run_id: str, request: Request) -> Any:
                self.seen_last_ids.append(request.headers.get("last-event-id"))
                conn = self.connections[min(len(self.seen_last_ids), len(self.connections)) - 1]
                after = last_event_id(request)
                messages = self.messages(after, conn)
                if conn.then == "drop":
                    return StreamingResponse(self.dropping(messages), media_type="text/event-stream",
                                             headers=SSE_HEADERS)
                return sse_response(messages, keepalive_s=0.1 if conn.then == "quiet" else 15.0)

        return app

    async def messages(self, after: int, conn: Connection) -> AsyncIterator[SseMessage]:
        yield SseMessage(self.running, event="run")
        for event in self.events:
            if after < event["seq"] <= conn.upto:
                yield SseMessage(event, event="agent", id=event["seq"])
        if conn.then == "end":
            yield SseMessage(self.final, event="run")
            yield SseMessage({"status": self.final["status"]}, event="end")
        elif conn.then == "quiet":
            await asyncio.Event().wait()  # nothing ever again: only keepalives

    async def dropping(self, messages: AsyncIterator[SseMessage]) -> AsyncIterator[bytes]:
        async for message in messages:
            yield message.encode()
        raise ConnectionAbortedError("the test server drops this connection mid-stream")


class BearerGuard:
    """Refuses requests without ``LiveApp.bearer``, as plain ASGI.

    Not ``@app.middleware("http")``: that middleware relays a streamed body
    through a queue and may finish it cleanly before the route's exception
    reaches it, turning a drop into a clean end. Here the exception goes
    straight to uvicorn, which closes the socket mid-body.
    """

    def __init__(self, app: ASGIApp, live: LiveApp) -> None:
        self.app, self.live = app, live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bearer = self.live.bearer
        if scope["type"] == "http" and bearer and Headers(scope=scope).get("authorization") != bearer:
            await JSONResponse({"error": "this API needs a bearer", "code": "unauthorized"}, 401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
