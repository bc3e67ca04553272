"""A small HTTP/1.1 client for the engine -> SDK hot path (plain ``http://`` only).

Why not only aiohttp: measured here, an aiohttp request costs ~0.16 ms more
CPU than writing the request and parsing the answer with ``httptools`` (the
C parser uvicorn uses) on a kept-alive connection. The engine makes 11 such
calls per 10-step run, so that is about 40 % of its CPU per call.
Everything else (``https://`` apps, the AI gateway, app sync) still goes
through aiohttp.

Scope, on purpose: POST with a complete body, a response read to the end
(Content-Length or chunked, via httptools), keep-alive connections pooled
per host:port, a total timeout per request, and one retry on a fresh
connection when a pooled one turns out to be closed before any byte of the
answer arrived (the app's keep-alive timeout raced us).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools

IDLE_TTL_S = 4.0   # below uvicorn's default 5 s keep-alive, so the app rarely closes under us


class StaleConnectionError(ConnectionError):
    """A pooled connection was closed before the answer started: safe to retry once."""


class ClosedBeforeHeadError(ConnectionError):
    """The connection closed (or was reset) after some bytes but before the response head was complete."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class _Conn(asyncio.Protocol):
    loop: asyncio.AbstractEventLoop
    transport: Any = None   # asyncio.Transport, or uvloop's (not a subclass of it)
    waiter: asyncio.Future[Response] | None = None
    parser: Any = None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    got_bytes: bool = False
    head_done: bool = False
    closed: bool = False
    keep_alive: bool = True
    idle_since: float = 0.0

    def __hash__(self) -> int:
        return id(self)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"invalid HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if not self.got_bytes:
                self._fail(StaleConnectionError(f"connection closed before the response started ({exc or 'EOF'})"))
            elif not self.head_done:
                self._fail(ClosedBeforeHeadError(f"connection closed mid-headers ({exc or 'EOF'})"))
            else:
                self._fail(ConnectionError(f"connection closed mid-response ({exc or 'EOF'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        val = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {val}" if key in self.headers else val

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.head_done = True
        self.keep_alive = bool(self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(Response(self.status, self.headers, b"".join(self.chunks)))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def start(self) -> asyncio.Future[Response]:
        self.parser = httptools.HttpResponseParser(self)
        self.status, self.headers, self.chunks, self.got_bytes, self.head_done = 0, {}, [], False, False
        self.waiter = self.loop.create_future()
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Client:
    """Keep-alive connection pool + POST; see the module docstring."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = defaultdict(list)

    async def _connect(self, host: str, port: int) -> _Conn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: _Conn(loop), host, port)
        return proto

    def _take(self, key: tuple[str, int]) -> _Conn | None:
        pool = self._idle.get(key)
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if not conn.closed and now - conn.idle_since < IDLE_TTL_S:
                return conn
            conn.close()
        return None

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        """POST and read the whole answer; raises TimeoutError, ConnectionError or OSError."""
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        key = (host, port)
        async with asyncio.timeout(timeout):
            for attempt in (0, 1):
                conn = self._take(key) if attempt == 0 else None
                reused = conn is not None
                if conn is None:
                    conn = await self._connect(host, port)
                waiter = conn.start()
                assert conn.transport is not None
                conn.transport.write(request)
                try:
                    resp = await waiter
                except StaleConnectionError:
                    conn.close()
                    if reused:
                        continue
                    raise
                except BaseException:
                    conn.close()
                    raise
                if conn.keep_alive and not conn.closed:
                    conn.idle_since = time.monotonic()
                    conn.waiter = None
                    self._idle[key].append(conn)
                else:
                    conn.close()
                return resp
        raise ConnectionError("unreachable")  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()
