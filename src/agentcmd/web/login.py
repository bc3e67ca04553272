"""``GET/POST /login`` and ``POST /logout`` for either UI, on its ``Site`` (``site.py``).

The flow (rate limit, token check, session cookie, revocation) is
``agentcmd.webauth.login``; these handlers read the form and render the
UI's own login page.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from agentcmd.errors import AgentcmdError
from agentcmd.web.forms import accepts_json, read_form, safe_next
from agentcmd.web.site import site_of
from agentcmd.webauth import login as login_flow


async def login_form(request: Request) -> Response:
    site = site_of(request)
    return login_flow.login_form(site.auth, request, safe_next(request.query_params.get("next")), site.login_page)


async def login_submit(request: Request) -> Response:
    site = site_of(request)
    try:
        fields = await read_form(request)
    except AgentcmdError as exc:
        return site.error(request, exc, accepts_json(request))
    return login_flow.login_submit(site.auth, request, fields, safe_next(fields.get("next")), site.login_page)


async def logout(request: Request) -> Response:
    return login_flow.logout(site_of(request).auth, request)


def add_login_routes(router: APIRouter) -> None:
    router.add_api_route("/login", login_form, methods=["GET"])
    router.add_api_route("/login", login_submit, methods=["POST"])
    router.add_api_route("/logout", logout, methods=["POST"])
