"""``ProtectMiddleware``: every app server request passes ``AppAuth`` before it reaches a route.

A middleware rather than per-route dependencies, so a route added later is
closed by default (``access.classify`` makes unknown paths pages or
actions). Pure ASGI, not ``BaseHTTPMiddleware``: the SDK endpoint's
requests run step commands, and a client disconnect or shutdown must still
cancel them the way it does without the middleware. It only reads headers
and cookies; the CSRF token in a form body is checked by the view.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from agentcmd.observe.appmetrics import METRICS_PATH, scrape_refusal
from agentcmd.server.access import AppAuth, classify, cross_site
from agentcmd.webauth.policy import Need, Route

_NO_STORE = {"Cache-Control": "no-store"}
BEARER_HINT = ("send 'Authorization: Bearer <signing key>' (the raw key or the SDK's hashed form); "
               "the agentcmd CLI does when a signing key is configured ('agentcmd install' or INNGEST_SIGNING_KEY)")


def wants_json(request: Request) -> bool:
    return (request.url.path.endswith(".json") or request.query_params.get("format") == "json"
            or "application/json" in request.headers.get("accept", ""))


def unauthorized(what: str, hint: str, *, bearer: bool = False) -> Response:
    headers = {**_NO_STORE, **({"WWW-Authenticate": 'Bearer realm="agentcmd"'} if bearer else {})}
    return JSONResponse({"error": what, "code": "unauthorized", "hint": hint}, status_code=401, headers=headers)


def _login_needed(request: Request) -> Response:
    if wants_json(request) or "text/event-stream" in request.headers.get("accept", ""):  # an EventSource: no redirect
        return unauthorized("log in to the workflow views first",
                            "POST the dashboard token to /login, or open /login in a browser")
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303, headers=_NO_STORE)
    body = ('<!doctype html><html lang="en"><title>Log in first · agentcmd</title>'
            f'<p>Log in first: <a href="/login">/login</a> ({html.escape(request.method)} '
            f'{html.escape(request.url.path)} needs a session).</p></html>')
    return HTMLResponse(body, status_code=401, headers=_NO_STORE)


class ProtectMiddleware:
    def __init__(self, app: ASGIApp, auth: AppAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        denial = self.decide(request)
        if denial is None:
            await self.app(scope, receive, send)
        else:
            await denial(scope, receive, send)

    def decide(self, request: Request) -> Response | None:
        """None to serve the request, else the response that refuses it."""
        if request.url.path == METRICS_PATH:
            return scrape_refusal(self.auth, request)    # open, or the bearer when locked (observe/appmetrics.py)
        route = classify(request.method, request.url.path)
        need = self.auth.need_for(route)
        if need in (Need.OPEN, Need.SIGNATURE, Need.CSRF):
            if route in (Route.API_READ, Route.API_WRITE) and \
                    cross_site(dict(request.headers), request.headers.get("host", "")):
                return JSONResponse({"error": "the app API does not answer pages on other sites",
                                     "code": "forbidden", "hint": "call it from the CLI or a script"},
                                    status_code=403, headers=_NO_STORE)
            return None
        if need is Need.BEARER:
            if self.auth.bearer_ok(request.headers.get("authorization")):
                return None
            return unauthorized("missing or wrong bearer token", BEARER_HINT, bearer=True)
        if need in (Need.SESSION, Need.SESSION_CSRF):
            return None if self.auth.web.logged_in(request) else _login_needed(request)
        return JSONResponse({"error": "not offered in this configuration", "code": "forbidden", "hint": ""},
                            status_code=403, headers=_NO_STORE)
