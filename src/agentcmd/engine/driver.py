"""(5) The HTTP call to the SDK: serialize, sign, send, classify. Uses aiohttp.

aiohttp rather than httpx because this is the hot path: at 32 concurrent
requests to one local server it measured ~5,000 req/s against httpx's ~300
(CONVENTIONS "measured facts"). The driver splits failures that are not the
user's fault (not an SDK endpoint, bad or missing signature) from the user's
own errors, and both from interruptions (the app did not answer at all:
refused, reset or closed before the response head; docs/engine.md, interrupted calls): all come
back as ``SDKResponse``, never as exceptions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Protocol

from agentcmd import signing
from agentcmd.engine import http1
from agentcmd.engine.protocol import ResponseKind, SDKResponse, parse_response
from agentcmd.engine.store import now_ms

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("agentcmd.engine.driver")
# One SDK call runs one step, and an agent step (a coding agent at work) can
# take many minutes: like the Go server's 2 h request limit, not a web timeout.
# Users set it with engine_call_timeout (--call-timeout, AGENTCMD_ENGINE_CALL_TIMEOUT);
# config.settings.ENGINE_CALL_TIMEOUT_DEFAULT_S is the same number.
DEFAULT_TIMEOUT_S = 7200.0


def _failed(url: str, exc: BaseException) -> SDKResponse:
    """The app was reached and its answer started, then broke off: a failed attempt."""
    detail = str(exc) or type(exc).__name__
    return SDKResponse(ResponseKind.INTERNAL_ERROR, 0, message=(
        f"SDK call to {url} failed: {detail}; the app broke off its answer "
        "(check its logs: did it crash, restart, or is a proxy in between cutting responses?)"))


def _interrupted(url: str, exc: BaseException, *, connected: bool) -> SDKResponse:
    """No answer at all (docs/engine.md, interrupted calls): an interruption, not an attempt (engine/interrupt.py)."""
    detail = str(exc) or type(exc).__name__
    if connected:
        message = f"the app at {url} closed the connection before answering: {detail}"
    else:
        message = f"SDK unreachable at {url}: {detail} (is the app running and listening there?)"
    return SDKResponse(ResponseKind.INTERRUPTED, 0, message=message)


def _with_url(result: SDKResponse, url: str) -> SDKResponse:
    """An answer we could not use (not from the SDK, bad JSON): say which URL gave it."""
    if result.kind == ResponseKind.INTERNAL_ERROR and result.message and url not in result.message:
        return dataclasses.replace(result, message=f"{result.message} (from {url})")
    return result


class ConnectCaller(Protocol):
    async def call(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> SDKResponse: ...


class Driver:
    """One aiohttp session for every SDK call of the engine."""

    def __init__(self, signing_key: str | None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 server_kind: str = "dev") -> None:
        self.signing_key = signing_key
        self.timeout_s = timeout_s
        self.server_kind = server_kind
        self._session: aiohttp.ClientSession | None = None
        self._http1 = http1.Client()
        # The connect gateway (engine/connect), for apps whose URL is connect://<app id>; None: connect is off.
        self.connect: ConnectCaller | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # aiohttp costs ~0.3 s to import (it builds an SSL context); it is
        # imported here, on first use, or ahead of time by ``warm_up``, so
        # that it is not on the path to /health turning ready.
        import aiohttp

        if self._session is None or self._session.closed:
            # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them under us.
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=4, enable_cleanup_closed=False)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                skip_auto_headers=("User-Agent",))
        return self._session

    @staticmethod
    async def warm_up() -> None:
        """Import aiohttp in a thread once the engine is ready."""
        import importlib

        await asyncio.to_thread(importlib.import_module, "aiohttp")

    async def close(self) -> None:
        self._http1.close()
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def call(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> SDKResponse:
        """POST canonical ``body`` (signed in production) and classify the answer; never raises."""
        if url.startswith("connect://"):     # a connect app: over one of its workers' sockets, not HTTP
            if self.connect is None:
                return SDKResponse(ResponseKind.INTERRUPTED, 0, message=(
                    f"{url.split('?')[0]} is a connect app and this engine runs without the connect gateway "
                    "(--no-connect, or its port was taken at start)"))
            return await self.connect.call(url, body, headers)
        h = {"Content-Type": "application/json", "X-Inngest-Server-Kind": self.server_kind,
             "X-Inngest-Req-Version": "2", **(headers or {})}
        if self.signing_key:
            h["X-Inngest-Signature"] = signing.sign(body, self.signing_key)
        if url.startswith("http://"):
            try:
                r = await self._http1.post(url, body, h, self.timeout_s)
            except TimeoutError:
                return self._timed_out(url)
            except OSError as exc:   # ConnectionError is an OSError
                # A bare ConnectionError: the answer's head arrived, then the app broke off or sent
                # garbage (a failed attempt). Anything else (refused, reset or closed before the head,
                # no route) means the app did not answer at all: an interruption.
                if type(exc) is ConnectionError:
                    return _failed(url, exc)
                return _interrupted(url, exc, connected=isinstance(exc, ConnectionError)
                                    and not isinstance(exc, ConnectionRefusedError))
            raw = r.body
            result = parse_response(r.status, r.headers, raw, now_ms())
            return _with_url(self._checked(result, raw, url), url)
        import aiohttp

        for attempt in (0, 1):
            head = False
            try:
                async with self._get_session().post(url, data=body, headers=h) as resp:
                    head = True
                    raw = await resp.read()
                    result = parse_response(resp.status, dict(resp.headers), raw, now_ms())
                break
            except TimeoutError:
                return self._timed_out(url)
            except aiohttp.ClientConnectionError as exc:
                if head:
                    return _failed(url, exc)
                # A pooled keep-alive connection the app closed just as we reused it
                # ("Can not write request body", "Server disconnected"): try once more
                # on a fresh connection. Refused connections are not retried here.
                refused = isinstance(exc, aiohttp.ClientConnectorError)
                if attempt == 0 and not refused:
                    continue
                return _interrupted(url, exc, connected=not refused)
            except aiohttp.ClientError as exc:   # e.g. ClientPayloadError: a truncated body
                return _failed(url, exc)
            except OSError as exc:
                return _interrupted(url, exc, connected=False)
        return _with_url(self._checked(result, raw, url), url)

    def _timed_out(self, url: str) -> SDKResponse:
        return SDKResponse(ResponseKind.INTERNAL_ERROR, 0, message=(
            f"SDK call timed out after {self.timeout_s:g} s: {url} did not answer in time (check the app's "
            "logs for a stuck step; if steps legitimately run longer, raise the engine call timeout: "
            "--call-timeout or AGENTCMD_ENGINE_CALL_TIMEOUT)"))

    def _checked(self, result: SDKResponse, raw: bytes, url: str) -> SDKResponse:
        """Production: an SDK answer counts only if signed with our key.

        The official SDK signs every answer to a signed request; an answer
        without a valid signature came from something else at that URL (a
        wrong or hostile URL, a proxy), and must not become a step's result.
        Answers that already fail (not from the SDK, bad JSON) keep their
        own, more precise error; the app's 503-interrupted answer is taken
        unsigned (it only delays the run, bounded by ``app_wait_timeout``).
        """
        if not self.signing_key or result.kind in (ResponseKind.INTERNAL_ERROR, ResponseKind.INTERRUPTED):
            return result
        header = result.headers.get("x-inngest-signature")
        if not header:
            return SDKResponse(ResponseKind.INTERNAL_ERROR, result.status, result.body, message=(
                f"unsigned answer from {url}: HTTP {result.status} without an X-Inngest-Signature header; "
                "in production the engine only accepts answers the SDK signed with the signing key "
                "(check that this URL is the app's and that the app runs in production mode with the same "
                "signing key)"))
        if not signing.verify_response(raw, header, self.signing_key):
            return SDKResponse(ResponseKind.INTERNAL_ERROR, result.status, result.body, message=(
                f"the SDK's response signature does not match the signing key (answer from {url}; check "
                "that the app uses the same signing key as the engine)"))
        return result

    async def request_json(self, method: str, url: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        """A plain JSON request (the AI gateway); returns (status, parsed body or text)."""
        data = signing.compact_json(body) if body is not None else None
        async with self._get_session().request(method, url, data=data,
                                                 headers={"Content-Type": "application/json", **headers}) as resp:
            text = await resp.text()
            try:
                import json

                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text
