"""Rendering helpers shared by the dashboard views: Jinja environment, filters, responses.

Pages and their JSON twins are built from one ``data`` dict per view: the
template gets it (plus chrome such as the mode banner and the CSRF token),
the twin gets ``as_json(data)``. So a twin can never show something the page
does not, and the other way round.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from agentcmd.engine.store.queries.models import as_json
from agentcmd.errors import AgentcmdError
from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth
from agentcmd.webauth.policy import Need, Route

HERE = Path(__file__).parent
MAX_PRE_CHARS = 20_000


def fmt_duration(ms: int | None) -> str:
    """850 ms, 12.3 s, 4 m 05 s, 1 h 02 m: short and unambiguous."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m} m {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} m"


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "–"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def pretty_json(value: Any) -> str:
    """Indented JSON for a <pre>, cut at MAX_PRE_CHARS with a note (the JSON twin has it all)."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > MAX_PRE_CHARS:
        return text[:MAX_PRE_CHARS] + f"\n… cut at {MAX_PRE_CHARS} characters; the JSON twin has the rest"
    return text


def version_of(*parts: Any) -> str:
    """A short fingerprint of what a page shows; live updates re-render when it changes."""
    return hashlib.sha1(json.dumps(as_json(list(parts)), default=str).encode()).hexdigest()[:12]


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(duration=fmt_duration, time=fmt_time, iso=iso_time, pretty=pretty_json)
    return env


@dataclass
class Chrome:
    """What every page shows around its content: mode banner, nav, login state."""

    mode: Mode
    db_description: str | None
    auth: WebAuth
    env: jinja2.Environment = field(default_factory=make_env)
    has_actions: bool = False
    db_problem: Callable[[], str | None] = lambda: None

    def problem(self, request: Request | None) -> str | None:
        """A database that cannot be written right now (disk full, locked): said on every page."""
        problem = self.db_problem()
        if problem is None:
            return None
        if request is not None and not self.auth.page_allowed(request):
            return "the engine database cannot be written right now; new events are refused until it can"
        return problem

    def banner(self, request: Request | None = None) -> str:
        """The mode banner; the database path only for those who may read the dashboard."""
        if self.mode is Mode.PRODUCTION:
            shown = request is None or self.auth.page_allowed(request)
            where = self.db_description if shown and self.db_description else "the engine database"
            return f"persistent: history is kept in {where}"
        return "ephemeral: history is lost on restart"

    def can_send_events(self) -> bool:
        return self.has_actions and self.auth.need(Route.SEND_EVENT) is not Need.FORBIDDEN

    def page(self, request: Request, template: str, data: dict[str, Any], *, title: str, nav: str,
             poll: str | None = None, version: str = "", status_code: int = 200,
             started: float | None = None) -> Response:
        cookies: dict[str, str] = {}
        csrf = self.auth.csrf_token(request, cookies)
        html = self.env.get_template(template).render(
            **data, title=title, nav=nav, mode=self.mode.value, banner=self.banner(request), csrf=csrf, poll=poll,
            db_problem=self.problem(request),
            version=version, logged_in=self.auth.logged_in(request), locked=self.auth.locked,
            can_read=self.auth.page_allowed(request),
            has_actions=self.has_actions, can_send=self.can_send_events(),
            notice=request.query_params.get("notice", ""), notice_n=_count(request.query_params.get("n")),
            path=request.url.path)
        response = HTMLResponse(html, status_code=status_code)
        for value in cookies.values():
            self.auth.set_csrf_cookie(request, response, value)
        _security_headers(response)
        if started is not None:
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
        return response

    def twin(self, data: dict[str, Any], *, version: str = "", status_code: int = 200,
             started: float | None = None, request: Request | None = None) -> Response:
        body = {**as_json(data), "mode": self.mode.value, "banner": self.banner(request)}
        problem = self.problem(request)
        if problem:
            body["database_problem"] = problem
        if version:
            body["version"] = version
        response = JSONResponse(body, status_code=status_code)
        _security_headers(response)
        if started is not None:
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
        return response

    def error(self, request: Request, exc: AgentcmdError, as_json_twin: bool) -> Response:
        if as_json_twin:
            response: Response = JSONResponse(exc.to_json(), status_code=exc.http_status)
            _security_headers(response)
            return response
        return self.page(request, "error.html", {"error": exc.what, "hint": exc.fix or "", "code": exc.code},
                         title="Error", nav="", status_code=exc.http_status)


def _security_headers(response: Response) -> None:
    # The dashboard needs no third-party content, no framing and no inline script.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def _count(value: str | None) -> str:
    """A notice's number (``?n=3`` after a replay); anything else is not shown."""
    return value if value and value.isdigit() and len(value) < 7 else ""


def wants_json(request: Request, suffix_json: bool) -> bool:
    return suffix_json or request.query_params.get("format") == "json"
