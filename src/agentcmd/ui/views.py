"""The app server's pages: ``/`` (workflows + recent runs), ``/workflows/{id}``, ``/runs/{id}``.

Each page calls the app API's handler for the same data (``agentcmd.server.api``)
and renders it, or returns it as its JSON twin (``.json`` or ``?format=json``);
one handler serves both. Forms (start a run with JSON input, cancel, resume) post
with a CSRF token bound to the browser's session (or a cookie when there is
no login); they work without JavaScript. Who may see a page at all is
decided before it gets here (``agentcmd.server.protect``). Rendering, the
login (dashboard token, signed session cookie, failed-login limit), the
stylesheet and the live-update script are shared with the engine dashboard
(``agentcmd.web``); nothing here imports the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from agentcmd import usagefmt
from agentcmd.errors import AgentcmdError, AuthError, InputError, NotFoundError
from agentcmd.httpedge import jsonbody
from agentcmd.mode import Mode
from agentcmd.safenames import path_under
from agentcmd.server import api
from agentcmd.ui import livepages, loaderrors, present, resumeform
from agentcmd.ui import questions as ui_questions
from agentcmd.ui.runlists import recent_runs as _recent_runs
from agentcmd.ui.runlists import runs_version as _runs_version
from agentcmd.web import login, static
from agentcmd.web.forms import read_form
from agentcmd.web.render import fmt_time, make_env, wants_json
from agentcmd.web.site import Site, provide, site_of
from agentcmd.webauth.guard import WebAuth
from agentcmd.webauth.session import CSRF_FIELD

HERE = Path(__file__).parent
STATIC_PREFIX = "/_ui/static/"


def _iso_time(value: Any) -> str:
    ms = present._ms(value)
    return fmt_time(ms) if ms is not None else "–"


@dataclass
class WorkflowSite(Site):
    """The workflow views' chrome: a link to the engine's dashboard when the engine is known."""

    def chrome(self, request: Request) -> dict[str, Any]:
        return {"engine": str(getattr(request.app.state.engine, "base_url", "")).rstrip("/")}


def build_site(auth: WebAuth) -> WorkflowSite:
    env = make_env(HERE / "templates", {"isotime": _iso_time, "usage": usagefmt.summary},
                   {"step_detail": present.step_detail})
    return WorkflowSite(auth, env, "agentcmd", STATIC_PREFIX, ("/", "Back to workflows"),
                        "The workflow views need the dashboard token.", "app server's machine")


def create_router(auth: WebAuth | None = None) -> APIRouter:
    """The workflow views and their login; ``auth`` is the app server's ``AppAuth.web``."""
    site = build_site(auth or WebAuth.build(Mode.DEV, "127.0.0.1"))
    router = APIRouter(include_in_schema=False, dependencies=[provide(site)])
    # Each page's JSON twin first: "/runs/{run_id}" would otherwise swallow "X.json".
    for paths, handler in ((("/index.json", "/"), index_page),
                           (("/workflows/{workflow_id}.json", "/workflows/{workflow_id}"), workflow_page),
                           (("/runs/{run_id}.json", "/runs/{run_id}"), run_page)):
        for path in paths:
            router.add_api_route(path, handler, methods=["GET"])
    router.add_api_route("/workflows/{workflow_id}/start", start_run, methods=["POST"])
    router.add_api_route("/runs/{run_id}/cancel", cancel_run, methods=["POST"])
    router.add_api_route("/runs/{run_id}/resume", resume_run, methods=["POST"])
    router.add_api_route("/runs/{run_id}/artifacts/{name}", artifact, methods=["GET"])
    # Approve / Reject and answer forms (ui/questions.py)
    router.add_api_route("/runs/{run_id}/questions/{question:path}/approve", ui_questions.approve_form,
                         methods=["POST"])
    router.add_api_route("/runs/{run_id}/questions/{question:path}/answer", ui_questions.answer_form,
                         methods=["POST"])
    router.add_api_route("/live", livepages.live_page, methods=["GET"])  # the pages' server-sent events
    static.add_static_route(router, STATIC_PREFIX)
    login.add_login_routes(router)
    return router


async def index_page(request: Request) -> Response:
    site = site_of(request)
    workflows = await api.list_workflows(request)
    runs, runs_error = await _recent_runs(request, None)
    data = {"workflows": workflows["data"], "load_errors": loaderrors.rows(workflows["errors"]), "runs": runs,
            "runs_error": runs_error}
    version = _runs_version(runs)
    if wants_json(request):
        return site.twin(request, data, version=version)
    return site.page(request, "index.html", data, title="Workflows", poll="/index.json", version=version,
                     live="/live")


async def workflow_page(request: Request, workflow_id: str) -> Response:
    site = site_of(request)
    as_json = wants_json(request)
    try:
        wf = (await api.get_workflow(request, workflow_id))["data"]
    except AgentcmdError as exc:
        return site.error(request, exc, as_json)
    runs, runs_error = await _recent_runs(request, workflow_id)
    data = {"workflow": wf, "runs": runs, "runs_error": runs_error, "usage": wf.get("usage"),
            "questions": await ui_questions.for_runs(request, runs, workflow_id),
            "load_errors": loaderrors.for_workflow((await api.list_workflows(request))["errors"], workflow_id)}
    version = _runs_version(runs, data["questions"])
    if as_json:
        return site.twin(request, data, version=version)
    return site.page(request, "workflow.html", {**data, "input": request.query_params.get("input", "{}"),
                                                "error": "", "problems": []},
                     title=wf["name"], poll=f"/workflows/{quote(workflow_id)}.json", version=version,
                     live=f"/live?workflow={quote(workflow_id, safe='')}")


async def run_page(request: Request, run_id: str) -> Response:
    return await show_run(request, run_id)


async def show_run(request: Request, run_id: str, resume_form: dict[str, Any] | None = None,
                   status_code: int = 200) -> Response:
    """The run page; ``resume_form`` is a resume form posted back with what was wrong (resumeform.py)."""
    site = site_of(request)
    as_json = wants_json(request)
    try:
        view = (await api.get_run(request, run_id))["data"]
    except AgentcmdError as exc:
        return site.error(request, exc, as_json)
    data = {"run": view, "phases": present.phase_progress(view), "artifacts": present.artifacts(view),
            "usage": view.get("usage"), "questions": await ui_questions.for_run(request, view)}
    version = livepages.run_version(view)
    if as_json:
        return site.twin(request, data, version=version)
    final = view["status"] in present.TERMINAL
    stream = await livepages.transcript_of(request.app.state.runtime.data_dir, run_id)
    resume = (resume_form or await resumeform.form_state(request, view)) if final else None
    return site.page(request, "run.html", {**data, "final": final, "transcript": stream, "resume": resume,
                                                "running": present.running_steps(view)}, title=f"Run {run_id}",
                     poll=None if final else f"/runs/{quote(run_id)}.json", version=version,
                     live=None if final else f"/runs/{quote(run_id)}/live?after={stream['after']}",
                     status_code=status_code)


async def _csrf_form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token checks out (an ``AuthError``, 403, if not)."""
    fields = await read_form(request)
    if not site_of(request).auth.csrf_ok(request, fields.get(CSRF_FIELD)):
        err = AuthError("the form's CSRF token is missing or stale", "reload the page and try again")
        err.http_status = 403
        raise err
    return fields


async def _start_again(request: Request, workflow_id: str, fields: dict[str, str], exc: InputError) -> Response:
    """The workflow page again with the input as typed and what is wrong with it (422)."""
    site = site_of(request)
    try:
        wf = (await api.get_workflow(request, workflow_id))["data"]
    except AgentcmdError as inner:
        return site.error(request, inner, False)
    problems = [f"{d.get('path')}: {d.get('message')}" for d in (exc.details or []) if isinstance(d, dict)]
    return site.page(request, "workflow.html", {"workflow": wf, "runs": [], "load_errors": [], "runs_error": "",
                                                "input": fields.get("input", "{}"),
                                                "error": exc.what, "problems": problems},
                     title=wf["name"], status_code=422)


async def start_run(request: Request, workflow_id: str) -> Response:
    fields: dict[str, str] = {}
    try:
        fields = await _csrf_form(request)
        data = jsonbody.loads((fields.get("input") or "{}").encode(), "the input")  # NaN, deep nesting: InputError
        started = (await api.start_run(request, workflow_id, {"input": data}))["data"]
    except InputError as exc:
        return await _start_again(request, workflow_id, fields, exc)
    except AgentcmdError as exc:
        return site_of(request).error(request, exc, False)
    if started.get("run_id"):
        return RedirectResponse(f"/runs/{quote(started['run_id'])}", status_code=303)
    return RedirectResponse(f"/workflows/{quote(workflow_id)}?notice=started", status_code=303)


async def cancel_run(request: Request, run_id: str) -> Response:
    try:
        await _csrf_form(request)
        await api.cancel_run(request, run_id)
    except AgentcmdError as exc:
        return site_of(request).error(request, exc, False)
    return RedirectResponse(f"/runs/{quote(run_id)}?notice=cancelled", status_code=303)


async def resume_run(request: Request, run_id: str) -> Response:
    return await resumeform.resume_run(request, run_id, _csrf_form, show_run,
                                       lambda req, exc: site_of(req).error(req, exc, False))


async def artifact(request: Request, run_id: str, name: str) -> Response:
    # Plain names only, and the resolved file inside the artifacts directory: no '..' (or '%2E%2E').
    target = path_under(request.app.state.runtime.data_dir / "artifacts", run_id, name)
    if target is None or not target.is_file():
        return site_of(request).error(request, NotFoundError(f"no artifact {name!r} for run {run_id}",
                                                             "pick one from the run page"), False)
    return FileResponse(target, filename=name)
