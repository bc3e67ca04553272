"""``Site``: one web UI's chrome (what every page shows around its content) and how it renders.

Each UI builds one ``Site`` (the engine dashboard's ``Chrome`` adds the mode
banner and its nav) and hands it to its router with ``provide``; every
handler, the shared login ones too, finds it with ``site_of(request)``. So
route handlers are plain module-level functions, not closures over a
router factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import jinja2
from fastapi import Depends
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from agentcmd.errors import AgentcmdError
from agentcmd.web.render import secure
from agentcmd.webauth.guard import WebAuth


def _same(value: Any) -> Any:
    return value


@dataclass
class Site:
    """A UI's name, auth, templates and static path; subclasses add their own chrome (``chrome``, ``twin_extra``)."""

    auth: WebAuth
    env: jinja2.Environment
    name: str                      # the brand and the title suffix
    static: str                    # where ``static.py`` serves the stylesheet and script, ending in '/'
    home: tuple[str, str]          # (url, label) an error page links back to
    login_intro: str               # who needs the token
    login_host: str                # where to print it
    to_json: Callable[[Any], Any] = field(default=_same)   # the page's data as its twin's JSON

    def chrome(self, request: Request) -> dict[str, Any]:
        """The UI's own variables for its ``base.html`` (nav, banners)."""
        return {}

    def twin_extra(self, request: Request) -> dict[str, Any]:
        """What every JSON twin of the UI carries besides its data."""
        return {}

    def page(self, request: Request, template: str, data: dict[str, Any], *, title: str, nav: str = "",
             poll: str | None = None, version: str = "", status_code: int = 200,
             started: float | None = None, live: str | None = None) -> Response:
        """Render ``template``; ``poll`` (the JSON twin) and ``live`` (its server-sent events) make ``#live`` update."""
        cookies: dict[str, str] = {}
        csrf = self.auth.csrf_token(request, cookies)
        html = self.env.get_template(template).render(
            **data, title=title, nav=nav, csrf=csrf, poll=poll, live=live, version=version, site_name=self.name,
            static=self.static, home_url=self.home[0], home_label=self.home[1], login_intro=self.login_intro,
            login_host=self.login_host, logged_in=self.auth.logged_in(request), locked=self.auth.locked,
            notice=request.query_params.get("notice", ""), path=request.url.path, **self.chrome(request))
        response = HTMLResponse(html, status_code=status_code)
        for value in cookies.values():
            self.auth.set_csrf_cookie(request, response, value)
        return secure(response, started)

    def twin(self, request: Request, data: dict[str, Any], *, version: str = "", status_code: int = 200,
             started: float | None = None) -> Response:
        body = {**self.to_json(data), **self.twin_extra(request)}
        if version:
            body["version"] = version
        return secure(JSONResponse(body, status_code=status_code), started)

    def error(self, request: Request, exc: AgentcmdError, as_json: bool) -> Response:
        """An error as its page, or as ``{"error", "code", "hint"}`` with its HTTP status."""
        if as_json:
            return secure(JSONResponse(exc.to_json(), status_code=exc.http_status))
        return self.page(request, "error.html", {"error": exc.what, "hint": exc.fix or "", "code": exc.code},
                         title="Error", status_code=exc.http_status)

    def login_page(self, request: Request, error: str = "", status_code: int = 200, next_url: str = "/") -> Response:
        return self.page(request, "login.html", {"error": error, "next": next_url}, title="Log in", nav="login",
                         status_code=status_code)


class _Provide:
    """A router dependency that puts the UI's objects on ``request.state`` before its handler runs."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def __call__(self, request: Request) -> None:
        for name, value in self.values.items():
            setattr(request.state, name, value)


def provide(site: Site, **more: Any) -> Any:
    """``APIRouter(dependencies=[provide(site, ...)])``: its handlers find ``site`` (and ``more``) on the request."""
    return Depends(_Provide({"site": site, **more}))


def site_of(request: Request) -> Site:
    return cast(Site, request.state.site)
