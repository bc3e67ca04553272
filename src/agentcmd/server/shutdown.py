"""App server shutdown: stop the steps, answer the engine "interrupted", never "failed".

On SIGTERM/SIGINT (``server/__main__.py`` hooks uvicorn's signal handler)
``begin()`` sets the shutting-down flag and stops every running step's
process group (``workflows/process.interrupt_all``). A step whose command
was stopped that way raises inside the SDK, and the SDK would report a
step error: a failed attempt on the engine, for a step that did nothing
wrong. So ``InterruptMiddleware`` wraps the SDK endpoint: every SDK call
still in flight when shutdown begins, and any that arrives later, is
answered::

    HTTP 503
    X-Agentcmd-Interrupted: app shutting down
    {"error": "app shutting down", "code": "interrupted"}

at once (the engine does not wait for the app to finish stopping), and the
SDK's own answer, when it comes, is dropped. The engine requeues the call
with the same attempt number (docs/engine.md, interrupted calls) and calls the step again, from
its start, when the app is back; completed steps are memoised and never
re-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentcmd.server import SERVE_PATH
from agentcmd.workflows.process import SHUTDOWN_GRACE_SECONDS, interrupt_all, reset_shutdown

log = logging.getLogger("uvicorn.error")  # the app server's own log (configured by uvicorn)

INTERRUPTED_HEADER = "X-Agentcmd-Interrupted"
REASON = "app shutting down"
DRAIN_SECONDS = SHUTDOWN_GRACE_SECONDS + 1.0
"""After answering 503, how long an SDK request may take to stop its step (SIGTERM grace + margin)."""


class Shutdown:
    """The process-wide shutting-down flag (one app server per process)."""

    def __init__(self) -> None:
        self.started = False
        # One future per in-flight SDK request, on that request's loop (tests run several servers,
        # each on its own loop in a thread; an asyncio.Event would bind to the first one).
        self._waiters: set[asyncio.Future[None]] = set()

    def begin(self) -> None:
        """Runs on the event loop: set the flag, wake the in-flight SDK requests, stop the steps."""
        if self.started:
            return
        self.started = True
        self._wake()
        stopped = interrupt_all()
        log.info("app server shutting down: stopping %d running step command(s); "
                 "in-flight workflow calls are answered 503-interrupted", stopped)

    def begin_from_signal(self) -> None:
        """Called from a signal handler: schedule ``begin`` on the running loop (thread-safe)."""
        loop = asyncio.events._get_running_loop()
        if loop is None:
            self.started = True
            return
        loop.call_soon_threadsafe(self.begin)

    def _wake(self) -> None:
        for fut in list(self._waiters):
            fut.get_loop().call_soon_threadsafe(_resolve, fut)

    async def wait(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            if not self.started:
                await fut
        finally:
            self._waiters.discard(fut)

    def reset(self) -> None:
        self.started = False
        reset_shutdown()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


current = Shutdown()


def interrupted_body() -> bytes:
    return json.dumps({"error": REASON, "code": "interrupted"}).encode()


async def send_interrupted(send: Send) -> None:
    body = interrupted_body()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (INTERRUPTED_HEADER.lower().encode(), REASON.encode()), (b"retry-after", b"1")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class InterruptMiddleware:
    """Answers SDK calls 503-interrupted once shutdown began (see the module docstring)."""

    def __init__(self, app: ASGIApp, path: str = SERVE_PATH, shutdown: Shutdown | None = None) -> None:
        self.app = app
        self.path = path.rstrip("/")
        self.shutdown = shutdown or current

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or \
                str(scope.get("path", "")).rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        if self.shutdown.started:
            await send_interrupted(send)
            return
        state = {"started": False, "replaced": False}
        lock = asyncio.Lock()

        async def guarded(message: Message) -> None:
            async with lock:
                if state["replaced"]:
                    return
                if message["type"] == "http.response.start":
                    if self.shutdown.started:
                        state["replaced"] = True
                        await send_interrupted(send)
                        return
                    state["started"] = True
                await send(message)

        app_task: asyncio.Task[Any] = asyncio.ensure_future(self.app(scope, receive, guarded))
        stop_task = asyncio.ensure_future(self.shutdown.wait())
        try:
            await asyncio.wait({app_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            app_task.cancel()
            stop_task.cancel()
            raise
        if app_task.done():
            stop_task.cancel()
            if state["replaced"]:
                with contextlib.suppress(Exception):
                    app_task.result()
                return
            app_task.result()
            return
        async with lock:
            if not state["started"] and not state["replaced"]:
                state["replaced"] = True
                await send_interrupted(send)
        # Let the step stop its command (it was signalled already) and finish, bounded.
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(app_task, DRAIN_SECONDS)
