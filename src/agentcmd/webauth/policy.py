"""The access policy: route kind x mode x bind -> what a request must carry.

Pure functions with no I/O, so the whole policy is one table test
(tests/webauth/test_policy.py) and the prose in docs/dashboard.md can be
checked against it.

The rules, from issue 7:

* Dev mode has no login (like ``inngest dev``); a dev engine refuses to
  bind beyond loopback unless ``--allow-remote-dev`` is given, and then
  warns. ``--dashboard-auth`` turns the login on in dev too.
* Production on loopback: the dashboard is open unless ``--dashboard-auth``;
  beyond loopback it always needs a login (dashboard token -> session).
* The REST and GraphQL APIs keep their production bearer (the signing key),
  events their event key, SDK calls their signature.
* Every state-changing dashboard form carries a CSRF token, even when no
  login is needed: a page on another site must not be able to cancel runs
  through a browser that can reach 127.0.0.1.
* "Send event" is a dev tool: in production it exists only behind a login.
"""

from __future__ import annotations

import enum

from agentcmd.errors import ConfigError
from agentcmd.mode import Mode
from agentcmd.webauth.loopback import is_loopback_host


class Route(enum.StrEnum):
    """What kind of thing a request asks for (see ``classify``)."""

    HEALTH = "health"
    STATIC = "static"  # CSS/JS of the dashboard: nothing secret
    LOGIN = "login"  # the login form, login and logout posts
    PAGE = "page"  # a dashboard page or its JSON twin
    ACTION = "action"  # cancel, rerun, re-sync, replay, pause, unpause (dashboard POST)
    SEND_EVENT = "send_event"  # the dashboard's "send event" form post
    API_READ = "api_read"  # GET /v1/..., /v0/gql
    API_WRITE = "api_write"  # DELETE /v1/runs/{id} and other non-GET /v1
    EVENT_INGEST = "event_ingest"  # POST /e/{event_key}
    SDK = "sdk"  # /fn/register and other SDK-facing routes
    WEBHOOK = "webhook"  # the app server's POST /api/webhooks/...: the sender's HMAC, checked by the route


class Need(enum.StrEnum):
    """What a request must carry to be served."""

    OPEN = "open"
    CSRF = "csrf"  # no login, but a CSRF token bound to the browser's cookie
    SESSION = "session"  # a valid session cookie (pages redirect to /login)
    SESSION_CSRF = "session+csrf"
    BEARER = "bearer"  # Authorization: Bearer <signing key or its hash>
    EVENT_KEY = "event_key"
    SIGNATURE = "signature"  # X-Inngest-Signature with the signing key
    FORBIDDEN = "forbidden"  # not offered in this configuration


def dashboard_locked(mode: Mode, loopback: bool, dashboard_auth: bool) -> bool:
    """Does the dashboard need a login? Production beyond loopback, or ``--dashboard-auth``."""
    return dashboard_auth or (mode is Mode.PRODUCTION and not loopback)


def requirement(route: Route, mode: Mode, loopback: bool, dashboard_auth: bool = False) -> Need:
    """What a request for ``route`` must carry; see the module docstring for the why."""
    if route in (Route.HEALTH, Route.STATIC, Route.LOGIN):
        return Need.OPEN
    locked = dashboard_locked(mode, loopback, dashboard_auth)
    production = mode is Mode.PRODUCTION
    if route is Route.PAGE:
        return Need.SESSION if locked else Need.OPEN
    if route is Route.ACTION:
        return Need.SESSION_CSRF if locked else Need.CSRF
    if route is Route.SEND_EVENT:
        if locked:
            return Need.SESSION_CSRF
        return Need.FORBIDDEN if production else Need.CSRF
    if route in (Route.API_READ, Route.API_WRITE):
        return Need.BEARER if production else Need.OPEN
    if route is Route.EVENT_INGEST:
        return Need.EVENT_KEY if production else Need.OPEN
    if route is Route.SDK:
        return Need.SIGNATURE if production else Need.OPEN
    if route is Route.WEBHOOK:
        return Need.SIGNATURE   # in every mode: a webhook route without its secret answers 404
    raise ValueError(f"unknown route kind {route!r}")  # pragma: no cover - enum is closed


def classify(method: str, path: str) -> Route:
    """The route kind of an engine request, from its method and path alone."""
    method = method.upper()
    if path == "/health":
        return Route.HEALTH
    if path.startswith("/_dashboard/static/"):
        return Route.STATIC
    if path in ("/login", "/logout"):
        return Route.LOGIN
    if path.startswith("/e/"):
        return Route.EVENT_INGEST
    if path.startswith("/fn/"):
        return Route.SDK
    if path == "/v0/gql" or path.startswith("/v0/gql/"):
        return Route.API_READ
    if path == "/v1" or path.startswith("/v1/"):
        return Route.API_READ if method in ("GET", "HEAD") else Route.API_WRITE
    if method in ("GET", "HEAD"):
        return Route.PAGE
    if path.rstrip("/") == "/send":
        return Route.SEND_EVENT
    return Route.ACTION


def check_bind(mode: Mode, host: str, allow_remote_dev: bool) -> str | None:
    """Refuse a dev engine bound beyond loopback unless allowed; return a warning to print, if any.

    Raises ``ConfigError`` (exit code 2) with the fix when refused.
    """
    if is_loopback_host(host) or mode is Mode.PRODUCTION:
        return None
    if not allow_remote_dev:
        raise ConfigError(
            f"refusing to bind the dev engine to {host}: dev mode has no authentication, so anyone who can "
            "reach this address could read every run and send events",
            "bind to 127.0.0.1 (the default), use 'agentcmd engine start' (production, with a login), "
            "or pass --allow-remote-dev if this network is trusted",
        )
    return (
        f"warning: the dev engine is bound to {host} with no authentication (--allow-remote-dev): "
        "anyone who can reach it can read runs and send events"
    )
