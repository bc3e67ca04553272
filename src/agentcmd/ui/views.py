"""The app server's pages: ``/`` (workflows + recent runs), ``/workflows/{id}``, ``/runs/{id}``.

Each page calls the app API's handler for the same data (``agentcmd.server.api``)
and renders it, or returns it as its JSON twin (``.json`` or ``?format=json``).
Forms (start a run with JSON input, cancel) post with a CSRF token bound to
the browser's session (or a cookie when there is no login); they work without
JavaScript. Who may see a page at all is decided before it gets here
(``agentcmd.server.protect``); the login form is the engine dashboard's flow
on the same ``WebAuth`` (dashboard token, signed session cookie, failed-login
limit). The look and the live-update script are
the engine dashboard's (``engine/dashboard/static``): one stylesheet, one
polling script.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from agentcmd.engine.dashboard.forms import read_form, safe_next
from agentcmd.engine.dashboard.render import fmt_duration, fmt_time, pretty_json, version_of
from agentcmd.errors import AgentcmdError, AuthError, InputError, NotFoundError
from agentcmd.httpedge import jsonbody
from agentcmd.mode import Mode
from agentcmd.safenames import path_under
from agentcmd.ui import loaderrors, present
from agentcmd.webauth import login as login_flow
from agentcmd.webauth.guard import WebAuth
from agentcmd.webauth.session import CSRF_FIELD

HERE = Path(__file__).parent
STATIC = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


def _iso_time(value: Any) -> str:
    ms = present._ms(value)
    return fmt_time(ms) if ms is not None else "–"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(duration=fmt_duration, isotime=_iso_time, pretty=pretty_json)
    env.globals.update(step_detail=present.step_detail)
    return env


def create_router(auth: WebAuth | None = None) -> APIRouter:
    """The workflow views and their login; ``auth`` is the app server's ``AppAuth.web``."""
    from agentcmd.server import api

    auth = auth or WebAuth.build(Mode.DEV, "127.0.0.1")
    env = _env()
    router = APIRouter(include_in_schema=False)

    def engine_url(request: Request) -> str:
        return str(getattr(request.app.state.engine, "base_url", "")).rstrip("/")

    def page(request: Request, template: str, data: dict[str, Any], title: str, *, poll: str | None = None,
             version: str = "", status_code: int = 200) -> Response:
        cookies: dict[str, str] = {}
        csrf = auth.csrf_token(request, cookies)
        html = env.get_template(template).render(**data, title=title, csrf=csrf, poll=poll, version=version,
                                                 engine=engine_url(request), locked=auth.locked,
                                                 logged_in=auth.logged_in(request),
                                                 notice=request.query_params.get("notice", ""))
        response = HTMLResponse(html, status_code=status_code)
        for value in cookies.values():
            auth.set_csrf_cookie(request, response, value)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'")
        response.headers["Cache-Control"] = "no-store"
        return response

    def twin(data: dict[str, Any], version: str = "") -> Response:
        return JSONResponse({**data, "version": version} if version else data)

    def failure(request: Request, exc: AgentcmdError, as_json: bool) -> Response:
        if as_json:
            return JSONResponse(exc.to_json(), status_code=exc.http_status)
        return page(request, "error.html", {"error": exc.what, "hint": exc.fix or "", "code": exc.code}, "Error",
                    status_code=exc.http_status)

    def wants_json(request: Request, suffix: bool) -> bool:
        return suffix or request.query_params.get("format") == "json"

    async def index(request: Request, suffix: bool = False) -> Response:
        as_json = wants_json(request, suffix)
        workflows = await api.list_workflows(request)
        try:
            runs = (await api.list_runs(request, workflow=None, status=None, limit=20, cursor=None))["data"]
            runs_error = ""
        except AgentcmdError as exc:  # the engine is down: still list the workflows
            runs, runs_error = [], exc.what
        data = {"workflows": workflows["data"], "load_errors": loaderrors.rows(workflows["errors"]), "runs": runs,
                "runs_error": runs_error}
        version = version_of([(r["run_id"], r["status"], r.get("phase")) for r in runs])
        if as_json:
            return twin(data, version)
        return page(request, "index.html", data, "Workflows", poll="/index.json", version=version)

    async def workflow(request: Request, workflow_id: str, suffix: bool = False) -> Response:
        as_json = wants_json(request, suffix)
        try:
            wf = (await api.get_workflow(request, workflow_id))["data"]
        except AgentcmdError as exc:
            return failure(request, exc, as_json)
        try:
            runs = (await api.list_runs(request, workflow=workflow_id, status=None, limit=20, cursor=None))["data"]
            runs_error = ""
        except AgentcmdError as exc:  # the engine is down: still show the workflow and its form
            runs, runs_error = [], exc.what
        data = {"workflow": wf, "runs": runs, "runs_error": runs_error,
                "load_errors": loaderrors.for_workflow((await api.list_workflows(request))["errors"], workflow_id)}
        version = version_of([(r["run_id"], r["status"], r.get("phase")) for r in runs])
        if as_json:
            return twin(data, version)
        return page(request, "workflow.html", {**data, "input": request.query_params.get("input", "{}"),
                                               "error": "", "problems": []},
                    wf["name"], poll=f"/workflows/{quote(workflow_id)}.json", version=version)

    async def run(request: Request, run_id: str, suffix: bool = False) -> Response:
        as_json = wants_json(request, suffix)
        try:
            view = (await api.get_run(request, run_id))["data"]
        except AgentcmdError as exc:
            return failure(request, exc, as_json)
        data = {"run": view, "phases": present.phase_progress(view), "artifacts": present.artifacts(view)}
        version = version_of(view["status"], [(s["name"], s["status"]) for s in view["steps"]])
        if as_json:
            return twin(data, version)
        final = view["status"] in present.TERMINAL
        return page(request, "run.html", {**data, "final": final}, f"Run {run_id}",
                    poll=None if final else f"/runs/{quote(run_id)}.json", version=version)

    @router.get("/index.json")
    async def index_json(request: Request) -> Response:
        return await index(request, True)

    @router.get("/")
    async def index_html(request: Request) -> Response:
        return await index(request)

    @router.get("/workflows/{workflow_id}.json")
    async def workflow_json(request: Request, workflow_id: str) -> Response:
        return await workflow(request, workflow_id, True)

    @router.get("/workflows/{workflow_id}")
    async def workflow_html(request: Request, workflow_id: str) -> Response:
        return await workflow(request, workflow_id)

    @router.get("/runs/{run_id}.json")
    async def run_json(request: Request, run_id: str) -> Response:
        return await run(request, run_id, True)

    @router.get("/runs/{run_id}")
    async def run_html(request: Request, run_id: str) -> Response:
        return await run(request, run_id)

    def login_page(request: Request, error: str = "", status_code: int = 200, next_url: str = "/") -> Response:
        return page(request, "login.html", {"error": error, "next": next_url}, "Log in", status_code=status_code)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return login_flow.login_form(auth, request, safe_next(request.query_params.get("next")), login_page)

    @router.post("/login")
    async def login(request: Request) -> Response:
        try:
            fields = await read_form(request)
        except AgentcmdError as exc:
            return failure(request, exc, False)
        return login_flow.login_submit(auth, request, fields, safe_next(fields.get("next")), login_page)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        return login_flow.logout(auth, request)

    async def form(request: Request) -> dict[str, str]:
        fields = await read_form(request)
        if not auth.csrf_ok(request, fields.get(CSRF_FIELD)):
            err = AuthError("the form's CSRF token is missing or stale", "reload the page and try again")
            err.http_status = 403
            raise err
        return fields

    @router.post("/workflows/{workflow_id}/start")
    async def start(request: Request, workflow_id: str) -> Response:
        fields: dict[str, str] = {}
        try:
            fields = await form(request)
            raw = fields.get("input") or "{}"
            data = jsonbody.loads(raw.encode(), "the input")  # strict: NaN, deep nesting are InputErrors
            started = (await api.start_run(request, workflow_id, {"input": data}))["data"]
        except InputError as exc:
            try:
                wf = (await api.get_workflow(request, workflow_id))["data"]
            except AgentcmdError as inner:
                return failure(request, inner, False)
            problems = [f"{d.get('path')}: {d.get('message')}" for d in (exc.details or []) if isinstance(d, dict)]
            return page(request, "workflow.html", {"workflow": wf, "runs": [], "load_errors": [], "runs_error": "",
                                                   "input": fields.get("input", "{}"),
                                                   "error": exc.what, "problems": problems}, wf["name"],
                        status_code=422)
        except AgentcmdError as exc:
            return failure(request, exc, False)
        if started.get("run_id"):
            return RedirectResponse(f"/runs/{quote(started['run_id'])}", status_code=303)
        return RedirectResponse(f"/workflows/{quote(workflow_id)}?notice=started", status_code=303)

    @router.post("/runs/{run_id}/cancel")
    async def cancel(request: Request, run_id: str) -> Response:
        try:
            await form(request)
            await api.cancel_run(request, run_id)
        except AgentcmdError as exc:
            return failure(request, exc, False)
        return RedirectResponse(f"/runs/{quote(run_id)}?notice=cancelled", status_code=303)

    @router.get("/runs/{run_id}/artifacts/{name}")
    async def artifact(request: Request, run_id: str, name: str) -> Response:
        # Plain names only, and the resolved file inside the artifacts directory: no '..' (or '%2E%2E').
        target = path_under(request.app.state.runtime.data_dir / "artifacts", run_id, name)
        if target is None or not target.is_file():
            return failure(request, NotFoundError(f"no artifact {name!r} for run {run_id}",
                                                  "pick one from the run page"), False)
        return FileResponse(target, filename=name)

    @router.get("/_ui/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        body = (resources.files("agentcmd.engine.dashboard") / "static" / name).read_bytes()
        return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})

    return router
