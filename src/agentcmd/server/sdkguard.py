"""``SdkGuardMiddleware``: what the SDK endpoint checks before the official SDK sees a request.

Two holes in the pinned SDK (inngest 0.5.19) that one request could use:

* **Sync hijack.** An unsigned ``PUT`` on the SDK endpoint makes the SDK
  register the app with the engine at the URL *the request was addressed
  to* (its ``Host`` header) unless a serve origin is configured. Anyone who
  can reach the app could send ``Host: attacker.example`` and the engine
  would send every later call, signed and with the full event data, there.
  So the registered URL comes only from configuration: the supervisor sets
  ``INNGEST_SERVE_ORIGIN`` (and ``INNGEST_SERVE_PATH``) to the app's
  configured URL, and without one the URL is the local address the request
  arrived on, never the ``Host`` header. In production a ``PUT`` addressed
  to another host is refused (401) unless it carries the signing key as
  ``Authorization: Bearer <hashed key>`` (what the engine's
  ``/fn/register`` expects): only an authenticated registration may name
  another URL. Dev has no keys; there the request is simply re-addressed to
  the configured URL.
* **Replay.** The SDK checks the HMAC of ``X-Inngest-Signature`` but not its
  ``t=`` timestamp, so a captured signed request could be replayed forever.
  In production a request without a timestamp, or one more than
  ``MAX_SIGNATURE_AGE_SECONDS`` away from now (the JS SDK's five minutes),
  gets 401 before the SDK runs anything. A replay inside the window is not
  detected (the engine may legitimately resend a byte-identical request
  within the same second).

Pure ASGI (not ``BaseHTTPMiddleware``) so a cancelled request still cancels
the step it runs; only the headers are read, never the body.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agentcmd.mode import Mode
from agentcmd.server import SERVE_PATH
from agentcmd.server.access import sdk_mode
from agentcmd.signing import BearerCheck

log = logging.getLogger("agentcmd.server")

MAX_SIGNATURE_AGE_SECONDS = 300
"""How far a signed request's ``t=`` may be from now (either way): the JS SDK's five minutes."""

SERVE_ORIGIN_ENV = "INNGEST_SERVE_ORIGIN"
SERVE_PATH_ENV = "INNGEST_SERVE_PATH"
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_NO_STORE = {"Cache-Control": "no-store"}


def configured_origin(environ: Mapping[str, str] | None = None) -> str | None:
    """The serve origin the SDK registers (``INNGEST_SERVE_ORIGIN``, read as the SDK reads it), or None."""
    value = (os.environ if environ is None else environ).get(SERVE_ORIGIN_ENV, "").strip()
    if not value:
        return None
    return value if "://" in value else "https://" + value


def _netloc(scheme: str, netloc: str) -> str:
    """``host:port`` in one spelling: lower case, the default port written out."""
    parts = urlsplit(f"{scheme}://{netloc}")
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = str(parts.port) if parts.port is not None else _DEFAULT_PORTS.get(scheme, "")
    except ValueError:
        port = "?"
    return f"{host}:{port}"


def _server_netloc(scope: Scope) -> str | None:
    """The local address the request arrived on (the socket's, not a header's)."""
    server = scope.get("server")
    if not server or server[1] is None:
        return None
    host = str(server[0])
    return f"[{host}]:{server[1]}" if ":" in host else f"{host}:{server[1]}"


def _header(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name]


def _refuse(what: str, hint: str, status: int = 401) -> JSONResponse:
    return JSONResponse({"error": what, "code": "unauthorized" if status == 401 else "bad_request",
                         "hint": hint}, status_code=status, headers=_NO_STORE)


def signature_problem(values: list[str], now: float | None = None) -> str | None:
    """Why the ``X-Inngest-Signature`` header(s) cannot be accepted in production, or None."""
    if not values:
        return "the request has no X-Inngest-Signature header"
    if len(values) > 1:
        return "the request has more than one X-Inngest-Signature header"
    stamp = parse_qs(values[0]).get("t", [""])[0]  # what the SDK reads: the first t=
    if not stamp.isdigit() or int(stamp) <= 0:
        return "the X-Inngest-Signature header has no timestamp (t=<unix seconds>)"
    age = (time.time() if now is None else now) - int(stamp)
    if abs(age) > MAX_SIGNATURE_AGE_SECONDS:
        direction = "old" if age > 0 else "in the future"
        return (f"the signed request is {abs(int(age))} s {direction}; requests are accepted within "
                f"{MAX_SIGNATURE_AGE_SECONDS} s of their timestamp (a replay, or a clock out of sync)")
    return None


class SdkGuardMiddleware:
    """Checks syncs and signature timestamps on ``SERVE_PATH``; every other path passes untouched."""

    def __init__(self, app: ASGIApp, signing_key: str | None = None,
                 mode: Callable[[], Mode] = sdk_mode) -> None:
        self.app = app
        self._bearer = BearerCheck(signing_key) if signing_key else None
        self._mode = mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != SERVE_PATH:
            await self.app(scope, receive, send)
            return
        production = self._mode() is Mode.PRODUCTION
        method = scope.get("method", "GET")
        if production:
            values = _header(scope, b"x-inngest-signature")
            # A POST runs a step: always signed. GET and PUT are signed only when the engine signs them.
            if method == "POST" or values:
                problem = signature_problem(values)
                if problem is not None:
                    log.warning("refused %s %s: %s", method, SERVE_PATH, problem)
                    await _refuse(problem, "only the engine, with the shared signing key and a clock "
                                           "within 5 minutes of this host's, may call this endpoint")(
                        scope, receive, send)
                    return
        if method == "PUT":
            synced = self._sync_scope(scope, production)
            if synced is None:
                await _refuse("this sync names another URL than the app's configured one",
                              f"sync through the app's own address ({configured_origin() or 'its bind address'}"
                              f"{SERVE_PATH}), or authenticate the sync with 'Authorization: Bearer <hashed "
                              "signing key>'; the app's URL is set by INNGEST_SERVE_ORIGIN")(scope, receive, send)
                return
            scope = synced
        await self.app(scope, receive, send)

    def _sync_scope(self, scope: Scope, production: bool) -> Scope | None:
        """The scope the SDK sees for a sync, or None when it must be refused."""
        origin = configured_origin()
        scheme = urlsplit(origin).scheme if origin else "http"
        where = urlsplit(origin).netloc if origin else _server_netloc(scope)
        expected = _netloc(scheme, where) if where else None
        hosts = _header(scope, b"host")
        asked = _netloc(scheme, hosts[0]) if len(hosts) == 1 else None
        if expected is not None and asked == expected:
            return scope
        if production and self._bearer is not None and \
                any(self._bearer.ok(v) for v in _header(scope, b"authorization")):
            return scope  # an authenticated registration may name its URL
        if production:
            log.warning("refused a sync addressed to %r (the app's URL is %s)", hosts, origin or expected)
            return None
        if expected is None:
            return scope
        # Dev: no keys to check, so the URL the SDK registers is made the configured one.
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"host"]
        host_value = urlsplit(origin).netloc if origin else expected
        return {**scope, "headers": [*headers, (b"host", host_value.encode("latin-1"))]}
