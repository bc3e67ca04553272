"""The dashboard's state-changing routes: cancel, rerun, resume, re-sync, send, replay, pause, unpause, bulk cancel.

Every post is a plain HTML form (works without JavaScript) carrying a CSRF
token; the check is ``WebAuth.action_allowed`` (policy in
``agentcmd.webauth.policy``). A success redirects (303) back to a page with
a notice; a client that asks for JSON (``Accept: application/json``) gets
``{"data": ...}`` instead, and errors as ``{"error", "code", "hint"}``.
Handlers are module-level; each describes its action as a ``do`` (what it
does, where to go after) and ``act`` runs the checks around it. The login
is ``agentcmd.web.login``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from agentcmd.engine.dashboard import cancelform, replayform
from agentcmd.engine.dashboard.buttons import DashboardActions
from agentcmd.engine.dashboard.views import Dashboard, dashboard_of, show_function
from agentcmd.engine.store import now_ms
from agentcmd.errors import AgentcmdError, AuthError, InputError, UnavailableError
from agentcmd.httpedge import jsonbody
from agentcmd.web.forms import accepts_json, read_form
from agentcmd.webauth.policy import Route
from agentcmd.webauth.session import CSRF_FIELD, CSRF_HEADER

Do = Callable[[DashboardActions, dict[str, str]], Awaitable[tuple[str, Any]]]
Redo = Callable[[Request, dict[str, str], InputError], Awaitable[Response]]


def add_form_routes(router: APIRouter) -> None:
    router.add_api_route("/runs/{run_id}/cancel", cancel, methods=["POST"])
    router.add_api_route("/runs/{run_id}/rerun", rerun, methods=["POST"])
    router.add_api_route("/runs/{run_id}/resume", resume, methods=["POST"])
    router.add_api_route("/apps/{app_id}/resync", resync, methods=["POST"])
    router.add_api_route("/send", send_form, methods=["GET"])
    router.add_api_route("/send", send, methods=["POST"])
    router.add_api_route("/functions/{slug}/replay", replay, methods=["POST"])
    router.add_api_route("/functions/{slug}/pause", pause, methods=["POST"])
    router.add_api_route("/functions/{slug}/unpause", unpause, methods=["POST"])
    router.add_api_route("/functions/{slug}/cancel-runs", cancel_runs, methods=["POST"])


async def _checked_form(request: Request, d: Dashboard, route: Route) -> dict[str, str] | Response:
    """The posted form, or the refusal (not allowed, bad CSRF token) as the response to send."""
    form = await read_form(request)
    allowed, status, reason = d.chrome.auth.action_allowed(
        request, route, form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER))
    if not allowed:
        err = AuthError(reason, "log in at /login" if status == 401 else "reload the page and try again")
        err.http_status = status
        return d.chrome.error(request, err, accepts_json(request))
    return form


async def act(request: Request, route: Route, do: Do, redo: Redo | None = None) -> Response:
    """Check the post, run ``do``; bad input goes back to the form (``redo``) when there is one."""
    d = dashboard_of(request)
    as_twin = accepts_json(request)
    form: dict[str, str] = {}
    try:
        checked = await _checked_form(request, d, route)
        if isinstance(checked, Response):
            return checked
        form = checked
        if d.actions is None:
            raise UnavailableError("this engine has no dashboard actions wired",
                                   "use the REST API or the CLI ('agentcmd runs cancel')")
        target, data = await do(d.actions, form)
    except InputError as exc:
        if redo is not None and not as_twin:
            return await redo(request, form, exc)
        return d.chrome.error(request, exc, as_twin)
    except AgentcmdError as exc:
        return d.chrome.error(request, exc, as_twin)
    if as_twin:
        return JSONResponse({"data": data})
    return RedirectResponse(target, status_code=303)


async def cancel(request: Request, run_id: str) -> Response:
    async def do(actions: DashboardActions, form: dict[str, str]) -> tuple[str, Any]:
        await actions.cancel_run(run_id)
        return f"/runs/{quote(run_id)}?notice=cancelled", {"run_id": run_id, "cancelled": True}

    return await act(request, Route.ACTION, do)


async def rerun(request: Request, run_id: str) -> Response:
    async def do(actions: DashboardActions, form: dict[str, str]) -> tuple[str, Any]:
        event_id = await actions.rerun(run_id)
        return f"/events/{quote(event_id)}?notice=rerun", {"run_id": run_id, "event_id": event_id}

    return await act(request, Route.ACTION, do)


async def resume(request: Request, run_id: str) -> Response:
    async def do(actions: DashboardActions, form: dict[str, str]) -> tuple[str, Any]:
        new = await actions.resume_run(run_id)
        return f"/runs/{quote(new)}?notice=resumed", {"run_id": new, "resumed_from": run_id}

    return await act(request, Route.ACTION, do)


async def resync(request: Request, app_id: str) -> Response:
    async def do(actions: DashboardActions, form: dict[str, str]) -> tuple[str, Any]:
        await actions.resync_app(app_id)
        return "/apps?notice=resynced", {"app_id": app_id, "resynced": True}

    return await act(request, Route.ACTION, do)


async def send_form(request: Request) -> Response:
    chrome = dashboard_of(request).chrome
    if not chrome.auth.page_allowed(request):
        return RedirectResponse("/login?next=/send", status_code=303)
    if not chrome.can_send_events():
        err = UnavailableError(
            "sending events from the dashboard is a dev tool: in production it needs --dashboard-auth",
            "start the engine with --dashboard-auth, or send events with 'agentcmd send'")
        err.http_status = 403 if chrome.has_actions else 503
        return chrome.error(request, err, False)
    return chrome.page(request, "send.html", {"name": "", "data": "{}", "error": ""}, title="Send event",
                       nav="send")


async def _send_event(actions: DashboardActions, form: dict[str, str]) -> tuple[str, Any]:
    name = form.get("name", "").strip()
    if not name:
        raise InputError("the event needs a name", "type a name such as 'app/thing.happened'")
    data = jsonbody.loads((form.get("data") or "{}").encode(), "the data")  # strict: NaN is refused
    if not isinstance(data, dict):
        raise InputError("the data must be a JSON object", "wrap it: {\"value\": ...}")
    ids = await actions.send_event(name, data)
    target = f"/events/{quote(ids[0])}?notice=sent" if ids else "/events?notice=sent"
    return target, {"ids": ids}


async def _send_again(request: Request, form: dict[str, str], exc: InputError) -> Response:
    """The send form again, as typed, with what was wrong."""
    return dashboard_of(request).chrome.page(
        request, "send.html", {"name": form.get("name", ""), "data": form.get("data", ""),
                               "error": f"{exc.what} ({exc.fix})" if exc.fix else exc.what},
        title="Send event", nav="send", status_code=exc.http_status)


async def send(request: Request) -> Response:
    return await act(request, Route.SEND_EVENT, _send_event, _send_again)


async def replay(request: Request, slug: str) -> Response:
    async def do(actions: DashboardActions, form: dict[str, str]) -> tuple[str, Any]:
        pairs = await actions.replay(slug, replayform.to_request(replayform.from_values(form, now_ms())))
        target = f"/runs?function={quote(slug)}&notice=replayed&n={len(pairs)}"
        return target, {"function": slug, "replayed": len(pairs),
                        "runs": [{"run_id": new, "replay_of": old} for new, old in pairs]}

    async def redo(request: Request, form: dict[str, str], exc: InputError) -> Response:
        return await show_function(request, slug, posted=replayform.from_values(form, now_ms()), error=exc)

    return await act(request, Route.ACTION, do, redo)


async def pause(request: Request, slug: str) -> Response:
    async def do(actions: DashboardActions, form: dict[str, str]) -> tuple[str, Any]:
        changed = await actions.pause_function(slug)
        return f"/functions/{quote(slug)}?notice=paused", {"function_id": slug, "paused": True,
                                                           "changed": changed, "resumed_calls": 0}

    return await act(request, Route.ACTION, do)


async def unpause(request: Request, slug: str) -> Response:
    async def do(actions: DashboardActions, form: dict[str, str]) -> tuple[str, Any]:
        changed, resumed = await actions.unpause_function(slug)
        return f"/functions/{quote(slug)}?notice=unpaused&n={resumed}", {
            "function_id": slug, "paused": False, "changed": changed, "resumed_calls": resumed}

    return await act(request, Route.ACTION, do)


async def cancel_runs(request: Request, slug: str) -> Response:
    async def do(actions: DashboardActions, form: dict[str, str]) -> tuple[str, Any]:
        n = await actions.cancel_function_runs(slug, cancelform.to_request(form))
        return f"/functions/{quote(slug)}?notice=bulk-cancelled&n={n}", {"function_id": slug, "cancelled": n}

    return await act(request, Route.ACTION, do)
