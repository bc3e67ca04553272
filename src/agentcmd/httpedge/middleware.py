"""``EdgeMiddleware``: the checks every request passes before routing, on both servers.

Pure ASGI (no ``BaseHTTPMiddleware``): it reads only headers, then, for a
request with a body, the body up to the route's limit, which it hands on
unchanged; later ``receive()`` calls go to the server, so a client
disconnect still reaches a long SDK call. A body with a ``Content-Length``
within the limit is not read here at all (the HTTP parser delivers no
more than announced), unless the route asks for a strict JSON check. Order: ``Host`` allow-list (421),
cross-site refusal (403), ``application/json`` on keyless routes (415),
``Content-Length`` above the limit (413, nothing read), the streamed body
above the limit (413, reading stops there), then strict JSON where the
route asks for it (400). Each refusal is ``{"error", "code", "hint"}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentcmd.errors import InputError
from agentcmd.httpedge import jsonbody
from agentcmd.httpedge.browser import SAFE_METHODS, cross_site_reason, json_refusal
from agentcmd.httpedge.hosts import ALLOWED_HOSTS_ENV, HostPolicy
from agentcmd.httpedge.limits import FORM_MAX, describe
from agentcmd.httpedge.redact import redact_path

log = logging.getLogger("agentcmd.httpedge")
_WANTED = frozenset({b"host", b"origin", b"sec-fetch-site", b"content-type", b"content-length", b"transfer-encoding"})


@dataclass(frozen=True)
class RouteRule:
    """What one route accepts: its body limit, and whether a keyless state change must be JSON."""

    limit: int = FORM_MAX
    json_only: bool = False      # unsafe methods: application/json bodies only (no key on this route)
    strict_json: bool = False    # the body must be strict JSON (checked here, for routes whose parser is not ours)
    # with strict_json: (method, query string, parsed body) -> raise InputError (400) for input the route cannot use
    check: Callable[[str, str, Any], None] | None = None
    any_site: bool = False       # no cross-site refusal: a webhook sender's own signature is the credential


@dataclass(frozen=True)
class EdgePolicy:
    hosts: HostPolicy
    rule: Callable[[str, str], RouteRule]     # (method, path) -> rule
    server: str = "server"                    # "engine" / "app server", for messages


def _refuse(status: int, error: str, code: str, hint: str, *, close: bool = False) -> tuple[int, bytes, list[Any]]:
    body = json.dumps({"error": error, "code": code, "hint": hint}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]
    if close:
        headers.append((b"connection", b"close"))
    return status, body, headers


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, policy: EdgePolicy) -> None:
        self.app = app
        self.policy = policy
        self._hosts_seen: dict[str, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:   # ASGI servers give lower-case names
            if raw_name in _WANTED and raw_name not in headers:
                headers[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
        method = scope["method"]
        path = scope["path"]
        rule = self.policy.rule(method, path)
        refusal = self._check_headers(method, path, headers, rule)
        if refusal is not None:
            await self._send(send, *refusal)
            return
        refusal = self._check_length(rule, headers)
        if refusal is not None:
            await self._send(send, *refusal)
            return
        needs_body = rule.check is not None or (rule.strict_json and method not in SAFE_METHODS)
        if "transfer-encoding" not in headers and not needs_body:
            # A Content-Length at most the limit (checked above) bounds the body: the HTTP parser
            # delivers no more than it announces, so there is nothing to count.
            await self.app(scope, receive, send)
            return
        body, refusal, disconnected = await self._read_body(receive, rule.limit)
        if disconnected:
            return
        if refusal is None and rule.strict_json and method not in SAFE_METHODS:
            try:
                value = jsonbody.loads(body)
                if rule.check is not None:
                    rule.check(method, scope.get("query_string", b"").decode("latin-1"), value)
            except InputError as err:
                refusal = _refuse(400, err.what, "invalid_input", err.fix or "")
        if refusal is not None:
            await self._send(send, *refusal)
            return
        await self.app(scope, _replay(body, receive), send)

    def _host_allowed(self, host: str) -> bool:
        known = self._hosts_seen.get(host)
        if known is None:
            if len(self._hosts_seen) >= 256:   # bounded: random Host headers cannot grow it
                self._hosts_seen.clear()
            known = self._hosts_seen[host] = self.policy.hosts.allows(host)
        return known

    def _check_headers(self, method: str, path: str, headers: dict[str, str],
                       rule: RouteRule) -> tuple[int, bytes, list[Any]] | None:
        host = headers.get("host")
        if host is None or not host.strip():
            return _refuse(400, "the request has no Host header", "bad_request",
                           "send HTTP/1.1 with a Host header (every HTTP client does)")
        if not self._host_allowed(host):
            log.warning("refused %s %s for Host %r (not an allowed host)", method, redact_path(path), host[:200])
            return _refuse(421, f"this {self.policy.server} does not answer to the host name {host[:200]!r}",
                           "host_not_allowed",
                           "open it at http://127.0.0.1:<port> (or its bind address), or add the name with "
                           f"--allowed-host / {ALLOWED_HOSTS_ENV} if it is meant to be reached that way")
        if method in SAFE_METHODS or rule.any_site:
            return None
        why = cross_site_reason(headers, self.policy.hosts) if "origin" in headers or "sec-fetch-site" in headers \
            else None
        if why is not None:
            return _refuse(403, f"{method} from a page on another site is refused ({why})", "forbidden",
                           f"use the {self.policy.server}'s own pages, the agentcmd CLI or a script; a reverse "
                           f"proxy's public name can be trusted with --allowed-host / {ALLOWED_HOSTS_ENV}")
        if rule.json_only:
            why = json_refusal(headers)
            if why is not None:
                return _refuse(415, f"{method} {redact_path(path)} takes JSON only: {why}", "unsupported_media_type",
                               "send the body with Content-Type: application/json")
        return None

    @staticmethod
    def _check_length(rule: RouteRule, headers: dict[str, str]) -> tuple[int, bytes, list[Any]] | None:
        raw = headers.get("content-length")
        if raw is None:
            return None
        raw = raw.strip()
        if not raw.isdigit():
            return _refuse(400, f"Content-Length {raw[:40]!r} is not a number", "bad_request",
                           "send the body's size in bytes", close=True)
        if int(raw) > rule.limit:
            return _refuse(413, f"the request body ({int(raw)} bytes) is larger than this route takes "
                           f"({describe(rule.limit)})", "too_large", _TOO_LARGE_HINT, close=True)
        return None

    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> tuple[bytes, tuple[int, bytes, list[Any]] | None, bool]:
        """(body, refusal, disconnected): reads at most ``limit`` bytes plus one message."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", None, True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", _refuse(413, f"the request body is larger than this route takes ({describe(limit)})",
                                    "too_large", _TOO_LARGE_HINT, close=True), False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None, False

    @staticmethod
    async def _send(send: Send, status: int, body: bytes, headers: list[Any]) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_TOO_LARGE_HINT = ("send less: see the body limits in docs/security.md (events up to 3 MiB each; large data "
                   "belongs in files or storage, passed by reference)")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already read body once, then the server's own messages (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
