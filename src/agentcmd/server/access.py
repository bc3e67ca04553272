"""Who may use the app server: the engine dashboard's policy, applied to the app's routes.

The app server can start runs (shell commands, agent CLIs), so it must be
at least as closed as the engine. The rules are ``agentcmd.webauth``'s,
decided on the BIND address (behind a proxy every client is 127.0.0.1):

* The workflow views are pages and actions: open on loopback, a dashboard
  token login (signed session cookie) when the app server is bound beyond
  loopback in production or given ``--dashboard-auth``; every form carries
  a CSRF token either way.
* The JSON API (``/api/...``) needs ``Authorization: Bearer <signing key>``
  (raw or the SDK's hashed form, ``agentcmd.signing.BearerCheck``,
  the engine's own check) in production (even on loopback: it sends events
  and reads runs, which the engine itself only allows with a key) and
  whenever the views need a login. On a dev loopback server it stays open
  for the CLI, but a browser on another site cannot use it (``cross_site``,
  and ``agentcmd.httpedge``: Host allow-list, JSON only).
* ``GET /health`` and the SDK endpoint are open: the SDK checks request
  signatures itself in production.
* Dev mode refuses a non-loopback bind unless ``--allow-remote-dev``
  (``check_bind``), and a locked server without a dashboard token or
  signing key refuses to start, saying how to get one (``check_secrets``).

This module is light (no Starlette import at module level) so the
supervisor can run the checks before it starts anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentcmd.errors import ConfigError
from agentcmd.mode import Mode
from agentcmd.server import SERVE_PATH
from agentcmd.signing import BearerCheck
from agentcmd.webauth.loopback import is_loopback_host
from agentcmd.webauth.policy import Need, Route, dashboard_locked
from agentcmd.webauth.policy import requirement as dashboard_requirement

if TYPE_CHECKING:
    from agentcmd.webauth.guard import WebAuth
    from agentcmd.webauth.options import WebOptions

STATIC_PREFIX = "/_ui/static/"
WEBHOOK_PATHS = re.compile(r"^/api/webhooks/(?:github|linear|generic/[^/]+)$")   # exactly server/webhooks.py's
API_PREFIX = "/api"
FIX_TOKEN = ("run 'agentcmd install' to generate one (shown by 'agentcmd config dashboard-token'), "
             "or set AGENTCMD_DASHBOARD_TOKEN")
FIX_KEY = "run 'agentcmd install' to generate one, or set INNGEST_SIGNING_KEY"


def sdk_mode(environ: dict[str, str] | None = None) -> Mode:
    """The mode the SDK is in: dev iff ``INNGEST_DEV`` is truthy (the SDK's own rule, env_lib.is_truthy).

    The app server's auth follows the SDK, so both agree on what production
    means; anything unclear is production, the closed answer.
    """
    value = (os.environ if environ is None else environ).get("INNGEST_DEV")
    if value is None or value.strip().lower() in ("", "0", "false"):
        return Mode.PRODUCTION
    return Mode.DEV


def classify(method: str, path: str) -> Route:
    """The route kind of an app server request, from its method and path alone.

    Anything not named here is a page (GET) or an action (other methods),
    so a new route is closed by default.
    """
    method = method.upper()
    if path == "/health":
        return Route.HEALTH
    if path == SERVE_PATH or path.startswith(SERVE_PATH + "/"):
        return Route.SDK
    if path.startswith(STATIC_PREFIX):
        return Route.STATIC
    if path in ("/login", "/logout"):
        return Route.LOGIN
    if method == "POST" and WEBHOOK_PATHS.match(path):
        return Route.WEBHOOK   # the sender's HMAC is the credential (server/webhooks.py)
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        return Route.API_READ if method in ("GET", "HEAD") else Route.API_WRITE
    return Route.PAGE if method in ("GET", "HEAD") else Route.ACTION


def requirement(route: Route, mode: Mode, loopback: bool, dashboard_auth: bool = False) -> Need:
    """What a request for ``route`` must carry on the app server (see the module docstring)."""
    if route in (Route.API_READ, Route.API_WRITE):
        # Production: always the bearer, even on loopback: the API sends events and reads runs, which the
        # engine only allows with its event key / bearer, so an open API would let any local user around them.
        return Need.BEARER if mode is Mode.PRODUCTION or dashboard_locked(mode, loopback, dashboard_auth) \
            else Need.OPEN
    if route is Route.SDK:
        return Need.SIGNATURE if mode is Mode.PRODUCTION else Need.OPEN  # checked by the SDK itself
    return dashboard_requirement(route, mode, loopback, dashboard_auth)


def check_bind(mode: Mode, host: str, allow_remote_dev: bool) -> str | None:
    """Refuse a dev app server bound beyond loopback unless allowed; return a warning to print, if any.

    The same rule as the engine's (``webauth.policy.check_bind``), in the app
    server's words: it is the one that runs commands.
    """
    if is_loopback_host(host) or mode is Mode.PRODUCTION:
        return None
    if not allow_remote_dev:
        raise ConfigError(
            f"refusing to bind the dev app server to {host}: dev mode has no authentication, so anyone who "
            "can reach this address could start runs (which execute shell commands and agent CLIs)",
            "bind to 127.0.0.1 (the default), use 'agentcmd start' (production, with a login), "
            "or pass --allow-remote-dev if this network is trusted",
        )
    return (f"warning: the dev app server is bound to {host} with no authentication (--allow-remote-dev): "
            "anyone who can reach it can start runs, which execute commands")


def check_secrets(mode: Mode, host: str, *, dashboard_auth: bool = False, token: str | None = None,
                  signing_key: str | None = None) -> None:
    """A locked app server needs a dashboard token (the login) and a signing key (the API bearer).

    Raises ``ConfigError`` (exit 2) saying how to get the missing one.
    """
    if not dashboard_locked(mode, is_loopback_host(host), dashboard_auth):
        return
    why = "--dashboard-auth is set" if dashboard_auth else f"it is bound beyond loopback ({host})"
    if not (token and token.strip()):
        raise ConfigError(f"the app server's workflow views need a login because {why}, "
                          "but no dashboard token is configured", FIX_TOKEN)
    if not (signing_key and signing_key.strip()):
        raise ConfigError(f"the app server's API needs a bearer (the signing key) because {why}, "
                          "but no signing key is configured", FIX_KEY)


@dataclass
class AppAuth:
    """The web login (``WebAuth``, shared with the engine dashboard) plus the API bearer check."""

    web: WebAuth
    bearer: BearerCheck | None = field(default=None, repr=False)

    @classmethod
    def build(cls, mode: Mode | str, host: str = "127.0.0.1", *, dashboard_auth: bool = False,
              token: str | None = None, signing_key: str | None = None,
              options: WebOptions | None = None) -> AppAuth:
        """Auth for an app server bound to ``host``; raises ConfigError when a login is needed but impossible."""
        from agentcmd.config.keys import validate_signing_key
        from agentcmd.webauth.guard import WebAuth

        mode = Mode(mode)
        check_secrets(mode, host, dashboard_auth=dashboard_auth, token=token, signing_key=signing_key)
        web = WebAuth.build(mode, host, dashboard_auth, token, options=options)
        key = validate_signing_key(signing_key, "the signing key") if signing_key and signing_key.strip() else None
        return cls(web, BearerCheck(key) if key else None)

    @property
    def mode(self) -> Mode:
        return self.web.mode

    @property
    def locked(self) -> bool:
        return self.web.locked

    def need_for(self, route: Route) -> Need:
        return requirement(route, self.web.mode, self.web.loopback, self.web.dashboard_auth)

    def need(self, method: str, path: str) -> Need:
        return self.need_for(classify(method, path))

    def bearer_ok(self, authorization: str | None) -> bool:
        return self.bearer is not None and self.bearer.ok(authorization)


def cross_site(headers: dict[str, str], host: str) -> bool:
    """Did a browser send this from another site? (``Sec-Fetch-Site``, else ``Origin`` vs ``Host``.)

    A page elsewhere can make a browser POST a form to 127.0.0.1:4100; with
    no login on loopback, this is what stops it from starting or cancelling
    runs through the JSON API. The CLI and scripts send neither header.
    """
    site = headers.get("sec-fetch-site", "").lower()
    if site in ("cross-site", "same-site"):
        return True
    origin = headers.get("origin")
    if origin is None or site in ("same-origin", "none"):
        return False
    scheme_sep = origin.find("://")
    return origin == "null" or scheme_sep < 0 or origin[scheme_sep + 3:].lower() != host.lower()
