"""The login and logout flow shared by the engine dashboard and the app's workflow views.

Both UIs render their own login page (``LoginPage``); the decisions (rate
limit, token check, session cookie, where to go next) live here once, so the
two servers cannot drift apart on what a failed login costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agentcmd.webauth.guard import WebAuth, client_key

WRONG_TOKEN = "That token is not right. 'agentcmd config dashboard-token' prints it."


class LoginPage(Protocol):
    def __call__(self, request: Request, error: str = "", status_code: int = 200,
                 next_url: str = "/") -> Response: ...


def login_form(auth: WebAuth, request: Request, next_url: str, login_page: LoginPage) -> Response:
    """GET /login: the form, or straight on when no login is needed or one is held."""
    if not auth.locked or auth.logged_in(request):
        return RedirectResponse(next_url, status_code=303)
    return login_page(request, next_url=next_url)


def login_submit(auth: WebAuth, request: Request, fields: Mapping[str, str], next_url: str,
                 login_page: LoginPage) -> Response:
    """POST /login after the form was read: rate limit, token check, session cookie."""
    client = client_key(auth, request)
    wait = auth.limiter.retry_after(client)
    if wait > 0:
        response = login_page(request, f"Too many failed logins. Try again in {int(wait) + 1} s.", 429, next_url)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    if auth.token is None:  # no login on this server
        return RedirectResponse(next_url, status_code=303)
    if not auth.check_token(fields.get("token", "")):
        auth.limiter.failed(client)
        return login_page(request, WRONG_TOKEN, 401, next_url)
    auth.limiter.succeeded(client)
    response = RedirectResponse(next_url, status_code=303)
    auth.start_session(request, response)
    return response


def logout(auth: WebAuth, request: Request) -> Response:
    """POST /logout: the session is revoked server-side, not only forgotten by this browser."""
    response = RedirectResponse("/login" if auth.locked else "/", status_code=303)
    auth.end_session(request, response)
    return response
