"""``WebAuth``: the policy, sessions, CSRF and the login limiter, applied to Starlette requests.

The dashboard router asks it two questions per request: "may this browser
see this page?" (``page_allowed``) and "is this form post genuine?"
(``action_allowed``). It never answers with key material: the dashboard
token is compared in constant time and only its HMAC-derived secret signs
cookies.

Who the client is (the limiter's key) and whether the browser came over
TLS (the cookies' ``Secure`` flag) come from ``WebOptions``: forwarded
headers count only from a configured trusted proxy (``proxy.py``).
``Secure`` is set when the connection itself is TLS, when a trusted proxy
says ``X-Forwarded-Proto: https``, or when ``public_url`` is https; never
otherwise, so a plain-http loopback login keeps working. A logout revokes
the session id server-side (``revocation.py``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from agentcmd.errors import ConfigError
from agentcmd.mode import Mode
from agentcmd.webauth.loopback import is_loopback_host
from agentcmd.webauth.options import WebOptions
from agentcmd.webauth.policy import Need, Route, dashboard_locked, requirement
from agentcmd.webauth.proxy import limiter_key
from agentcmd.webauth.ratelimit import LoginLimiter
from agentcmd.webauth.revocation import RevocationList
from agentcmd.webauth.session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Session,
    SessionSigner,
    derive_secret,
    tokens_equal,
)


@dataclass
class WebAuth:
    mode: Mode
    loopback: bool
    dashboard_auth: bool = False
    token: str | None = field(default=None, repr=False)
    signer: SessionSigner = field(default_factory=lambda: SessionSigner(derive_secret(None)), repr=False)
    limiter: LoginLimiter = field(default_factory=LoginLimiter, repr=False)
    options: WebOptions = field(default_factory=WebOptions)
    revoked: RevocationList = field(default_factory=RevocationList, repr=False)

    @classmethod
    def build(cls, mode: Mode | str, host: str, dashboard_auth: bool = False, token: str | None = None,
              limiter: LoginLimiter | None = None, options: WebOptions | None = None) -> WebAuth:
        """Auth for an engine bound to ``host``; raises ConfigError if a login is needed but no token exists."""
        mode = Mode(mode)
        loopback = is_loopback_host(host)
        token = token.strip() if token and token.strip() else None
        if dashboard_locked(mode, loopback, dashboard_auth) and token is None:
            why = "--dashboard-auth is set" if dashboard_auth else f"the engine is bound beyond loopback ({host})"
            raise ConfigError(
                f"the dashboard needs a login because {why}, but no dashboard token is configured",
                "run 'agentcmd install' to generate one (shown by 'agentcmd config dashboard-token'), "
                "or set AGENTCMD_DASHBOARD_TOKEN",
            )
        options = options or WebOptions()
        signer = SessionSigner(derive_secret(token))
        return cls(mode, loopback, dashboard_auth, token, signer, limiter or LoginLimiter(), options,
                   RevocationList(options.revocations_path, max_age_s=signer.max_age_s))

    @property
    def locked(self) -> bool:
        return dashboard_locked(self.mode, self.loopback, self.dashboard_auth)

    def need(self, route: Route) -> Need:
        return requirement(route, self.mode, self.loopback, self.dashboard_auth)

    # -- sessions --------------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        """The request's session: signed, unexpired and not logged out."""
        session = self.signer.verify(request.cookies.get(SESSION_COOKIE))
        if session is None or self.revoked.is_revoked(session):
            return None
        return session

    def logged_in(self, request: Request) -> bool:
        return self.session(request) is not None

    def check_token(self, submitted: str) -> bool:
        return self.token is not None and tokens_equal(submitted, self.token)

    def start_session(self, request: Request, response: Response) -> None:
        value, _ = self.signer.issue()
        response.set_cookie(SESSION_COOKIE, value, max_age=self.signer.max_age_s, httponly=True,
                            samesite="strict", secure=self.secure(request), path="/")

    def end_session(self, request: Request, response: Response) -> None:
        """Log out: revoke the session id server-side (a copied cookie is dead too) and clear the cookie."""
        session = self.session(request)
        if session is not None:
            self.revoked.revoke(session)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self.secure(request))

    # -- the client and its connection ------------------------------------------
    def client(self, request: Request) -> str:
        """The client's address: the peer, or what a trusted proxy forwarded (``proxy.TrustedProxies``)."""
        peer = request.client.host if request.client is not None else None
        return self.options.proxies.client(peer, request.headers.items())

    def secure(self, request: Request) -> bool:
        """Should cookies be ``Secure``? Did the browser reach us over https, as far as we can trust?"""
        if request.url.scheme == "https" or self.options.public_https:
            return True
        peer = request.client.host if request.client is not None else None
        return self.options.proxies.forwarded_https(peer, request.headers.items())

    # -- CSRF --------------------------------------------------------------------
    def _binding(self, request: Request) -> str | None:
        session = self.session(request)
        return session.sid if session is not None else request.cookies.get(CSRF_COOKIE)

    def csrf_token(self, request: Request, response_cookies: dict[str, str]) -> str:
        """The token to put in this page's forms; may ask for a CSRF cookie to be set."""
        binding = self._binding(request)
        if binding is None:
            binding = secrets.token_urlsafe(18)
            response_cookies[CSRF_COOKIE] = binding
        return self.signer.csrf_token(binding)

    def set_csrf_cookie(self, request: Request, response: Response, value: str) -> None:
        response.set_cookie(CSRF_COOKIE, value, httponly=True, samesite="strict",
                            secure=self.secure(request), path="/")

    def csrf_ok(self, request: Request, submitted: str | None) -> bool:
        return self.signer.check_csrf(self._binding(request), submitted)

    # -- decisions ---------------------------------------------------------------
    def page_allowed(self, request: Request) -> bool:
        need = self.need(Route.PAGE)
        return need is Need.OPEN or (need is Need.SESSION and self.logged_in(request))

    def action_allowed(self, request: Request, route: Route, submitted_csrf: str | None) -> tuple[bool, int, str]:
        """(allowed, HTTP status if not, reason) for a dashboard form post."""
        need = self.need(route)
        if need is Need.FORBIDDEN:
            return False, 403, "sending events from the dashboard needs a login in production (--dashboard-auth)"
        if need is Need.SESSION_CSRF and not self.logged_in(request):
            return False, 401, "log in first"
        if not self.csrf_ok(request, submitted_csrf):
            return False, 403, "the form's CSRF token is missing or stale: reload the page and try again"
        return True, 200, ""


def client_key(auth: WebAuth, request: Request) -> str:
    """The rate-limit key of a request: its client's address (an IPv6 client's /64)."""
    return limiter_key(auth.client(request))
