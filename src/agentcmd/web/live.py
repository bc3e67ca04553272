"""Server-sent events for live pages and live API reads: one helper for both web UIs and the app API.

A live page keeps one ``EventSource`` open instead of polling its JSON twin.
The server pushes what changed: a ``version`` message when the fingerprint
of what the page shows changes (the page then fetches its HTML again and
swaps its live region), ``agent`` messages with one stream event each (a
transcript appends them), and ``end`` when nothing will change any more.

Three rules keep an open stream from hurting the server:

- it ends by itself after ``max_s`` (the browser's ``EventSource``
  reconnects after ``retry`` ms, sending ``Last-Event-ID``), so no stream
  lives for ever and a reconnect resumes where it left off;
- it ends at once when the server is shutting down (``closing()``), so
  uvicorn's graceful shutdown never waits on a reader;
- it sends a comment line every ``keepalive_s`` so proxies keep it open and
  a vanished client is noticed.

Wire format: https://html.spec.whatwg.org/multipage/server-sent-events.html
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

SSE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx and friends: do not buffer the stream
    "X-Content-Type-Options": "nosniff",
}
KEEPALIVE_S = 15.0
MAX_STREAM_S = 300.0
RETRY_MS = 1000
CHECK_S = 0.5
"""How often a quiet stream looks at ``closing()``."""


@dataclass(frozen=True)
class SseMessage:
    """One server-sent event: ``data`` is sent as one line of JSON."""

    data: Any
    event: str | None = None
    id: str | int | None = None

    def encode(self) -> bytes:
        lines = []
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.event:
            lines.append(f"event: {self.event}")
        # json.dumps never emits a raw newline, so the data is always one line.
        lines.append("data: " + json.dumps(self.data, separators=(",", ":"), default=str))
        return ("\n".join(lines) + "\n\n").encode()


def last_event_id(request: Request) -> int:
    """Where a reader resumes: ``Last-Event-ID`` (a reconnecting EventSource) or ``?after=``; 0 if neither."""
    for raw in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if raw and raw.strip().isdigit():
            return int(raw.strip())
    return 0


Outgoing = SseMessage | list[SseMessage]
"""What a message source yields: one message, or several already waiting (sent in one write)."""


async def sse_stream(messages: AsyncIterator[Outgoing], *, closing: Callable[[], bool] = lambda: False,
                     keepalive_s: float = KEEPALIVE_S, max_s: float = MAX_STREAM_S,
                     retry_ms: int = RETRY_MS) -> AsyncIterator[bytes]:
    """The bytes of an event stream: ``messages`` as they come, keepalives, and an end (see module doc).

    An ``end`` message is sent on, then the stream stops: the reader knows nothing more will come.
    Whatever is already waiting when one write goes out goes with it: a busy stream costs a
    write per burst, not per event.
    """
    queue: asyncio.Queue[Outgoing | None] = asyncio.Queue(maxsize=1000)

    async def pump() -> None:
        try:
            async for message in messages:
                await queue.put(message)
        finally:
            await queue.put(None)

    task = asyncio.get_running_loop().create_task(pump())
    started = last_sent = time.monotonic()
    try:
        yield f"retry: {retry_ms}\n\n".encode()
        while not closing():
            now = time.monotonic()
            if now - started >= max_s:
                break
            try:
                item = await asyncio.wait_for(queue.get(), CHECK_S)
            except TimeoutError:
                if time.monotonic() - last_sent >= keepalive_s:
                    last_sent = time.monotonic()
                    yield b": keepalive\n\n"
                continue
            chunk, ended = _coalesce(item, queue)
            if chunk:
                last_sent = time.monotonic()
                yield chunk
            if ended:
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _coalesce(item: Outgoing | None, queue: asyncio.Queue[Outgoing | None]) -> tuple[bytes, bool]:
    """``item`` and everything already queued behind it, encoded; and whether the stream ends there."""
    out = bytearray()
    while True:
        if item is None:
            return bytes(out), True
        for message in item if isinstance(item, list) else (item,):
            out += message.encode()
            if message.event == "end":
                return bytes(out), True
        if queue.empty() or len(out) >= 256 * 1024:
            return bytes(out), False
        item = queue.get_nowait()


def sse_response(messages: AsyncIterator[Outgoing], *, closing: Callable[[], bool] = lambda: False,
                 keepalive_s: float = KEEPALIVE_S, max_s: float = MAX_STREAM_S) -> StreamingResponse:
    """A ``text/event-stream`` response for ``messages`` (see ``sse_stream``)."""
    return StreamingResponse(sse_stream(messages, closing=closing, keepalive_s=keepalive_s, max_s=max_s),
                             media_type="text/event-stream", headers=SSE_HEADERS)


async def version_messages(compute: Callable[[], Awaitable[tuple[str, bool]]], *, interval_s: float = 1.0,
                           changed: Callable[[], Awaitable[None]] | None = None,
                           known: str = "") -> AsyncIterator[SseMessage]:
    """``version`` messages whenever ``compute()`` gives a new fingerprint; ``end`` once it says final.

    ``compute() -> (version, final)``. Between looks it waits for ``changed()``
    when given (a notification from whatever writes the data), at most
    ``interval_s``; without it, it looks every ``interval_s``. ``known`` is the
    version the page was rendered with: no message until it differs.
    """
    last = known
    while True:
        version, final = await compute()
        if version != last:
            last = version
            yield SseMessage({"version": version}, event="version")
        if final:
            yield SseMessage({"version": version}, event="end")
            return
        if changed is None:
            await asyncio.sleep(interval_s)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed(), interval_s)
