"""The dashboard's state-changing routes: login/logout, cancel, rerun, re-sync, send event, replay, pause.

Every post is a plain HTML form (works without JavaScript) carrying a CSRF
token; the check is ``WebAuth.action_allowed`` (policy in
``agentcmd.webauth.policy``). A success redirects (303) back to a page with
a notice; a client that asks for JSON (``Accept: application/json``) gets
``{"data": ...}`` instead, and errors as ``{"error", "code", "hint"}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from agentcmd.engine.dashboard import replayform
from agentcmd.engine.dashboard.buttons import DashboardActions
from agentcmd.engine.dashboard.render import Chrome
from agentcmd.engine.store import now_ms
from agentcmd.errors import AgentcmdError, AuthError, InputError, UnavailableError
from agentcmd.httpedge import jsonbody
from agentcmd.webauth import login as login_flow
from agentcmd.webauth.policy import Route
from agentcmd.webauth.session import CSRF_FIELD, CSRF_HEADER

MAX_FORM_BYTES = 256 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (last value wins); no python-multipart needed."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InputError(f"the form is too large ({len(body)} bytes)", f"send at most {MAX_FORM_BYTES} bytes")
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def safe_next(value: str | None) -> str:
    """Only same-site relative paths: never redirect a fresh login to another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


FunctionPage = Callable[..., Awaitable[Response]]


def add_form_routes(router: APIRouter, chrome: Chrome, actions: DashboardActions | None,
                    function_page: FunctionPage | None = None) -> None:
    """``function_page(request, slug, posted=, error=)`` re-renders a refused replay on its form."""
    auth = chrome.auth

    def login_page(request: Request, error: str = "", status_code: int = 200, next_url: str = "/") -> Response:
        response = chrome.page(request, "login.html", {"error": error, "next": next_url}, title="Log in",
                               nav="login", status_code=status_code)
        return response

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return login_flow.login_form(auth, request, safe_next(request.query_params.get("next")), login_page)

    @router.post("/login")
    async def login(request: Request) -> Response:
        try:
            form = await read_form(request)
        except AgentcmdError as exc:
            return chrome.error(request, exc, _wants_json(request))
        return login_flow.login_submit(auth, request, form, safe_next(form.get("next")), login_page)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        return login_flow.logout(auth, request)

    async def act(request: Request, route: Route, do: Callable[[dict[str, str]], Awaitable[tuple[str, Any]]],
                  redo: Callable[[dict[str, str], InputError], Response | Awaitable[Response]] | None = None
                  ) -> Response:
        """Check the post, run ``do``; bad input goes back to the form (``redo``) when there is one."""
        as_twin = _wants_json(request)
        form: dict[str, str] = {}
        try:
            form = await read_form(request)
            allowed, status, reason = auth.action_allowed(
                request, route, form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER))
            if not allowed:
                err = AuthError(reason, "log in at /login" if status == 401 else "reload the page and try again")
                err.http_status = status
                return chrome.error(request, err, as_twin)
            if actions is None:
                raise UnavailableError("this engine has no dashboard actions wired",
                                       "use the REST API or the CLI ('agentcmd runs cancel')")
            target, data = await do(form)
        except InputError as exc:
            if redo is not None and not as_twin:
                again = redo(form, exc)
                return again if isinstance(again, Response) else await again
            return chrome.error(request, exc, as_twin)
        except AgentcmdError as exc:
            return chrome.error(request, exc, as_twin)
        if as_twin:
            return JSONResponse({"data": data})
        return RedirectResponse(target, status_code=303)

    @router.post("/runs/{run_id}/cancel")
    async def cancel(request: Request, run_id: str) -> Response:
        async def do(form: dict[str, str]) -> tuple[str, Any]:
            assert actions is not None
            await actions.cancel_run(run_id)
            return f"/runs/{quote(run_id)}?notice=cancelled", {"run_id": run_id, "cancelled": True}

        return await act(request, Route.ACTION, do)

    @router.post("/runs/{run_id}/rerun")
    async def rerun(request: Request, run_id: str) -> Response:
        async def do(form: dict[str, str]) -> tuple[str, Any]:
            assert actions is not None
            event_id = await actions.rerun(run_id)
            return f"/events/{quote(event_id)}?notice=rerun", {"run_id": run_id, "event_id": event_id}

        return await act(request, Route.ACTION, do)

    @router.post("/apps/{app_id}/resync")
    async def resync(request: Request, app_id: str) -> Response:
        async def do(form: dict[str, str]) -> tuple[str, Any]:
            assert actions is not None
            await actions.resync_app(app_id)
            return "/apps?notice=resynced", {"app_id": app_id, "resynced": True}

        return await act(request, Route.ACTION, do)

    @router.get("/send")
    async def send_form(request: Request) -> Response:
        if not auth.page_allowed(request):
            return RedirectResponse("/login?next=/send", status_code=303)
        if not chrome.can_send_events():
            err = UnavailableError(
                "sending events from the dashboard is a dev tool: in production it needs --dashboard-auth",
                "start the engine with --dashboard-auth, or send events with 'agentcmd send'")
            err.http_status = 403 if chrome.has_actions else 503
            return chrome.error(request, err, False)
        return chrome.page(request, "send.html", {"name": "", "data": "{}", "error": ""}, title="Send event",
                           nav="send")

    @router.post("/send")
    async def send(request: Request) -> Response:
        async def do(form: dict[str, str]) -> tuple[str, Any]:
            assert actions is not None
            name = form.get("name", "").strip()
            if not name:
                raise InputError("the event needs a name", "type a name such as 'app/thing.happened'")
            data = jsonbody.loads((form.get("data") or "{}").encode(), "the data")  # strict: NaN is refused
            if not isinstance(data, dict):
                raise InputError("the data must be a JSON object", "wrap it: {\"value\": ...}")
            ids = await actions.send_event(name, data)
            target = f"/events/{quote(ids[0])}?notice=sent" if ids else "/events?notice=sent"
            return target, {"ids": ids}

        def redo(form: dict[str, str], exc: InputError) -> Response:
            return chrome.page(request, "send.html", {"name": form.get("name", ""), "data": form.get("data", ""),
                                                      "error": f"{exc.what} ({exc.fix})" if exc.fix else exc.what},
                               title="Send event", nav="send", status_code=exc.http_status)

        return await act(request, Route.SEND_EVENT, do, redo)

    @router.post("/functions/{slug}/replay")
    async def replay(request: Request, slug: str) -> Response:
        async def do(form: dict[str, str]) -> tuple[str, Any]:
            assert actions is not None
            pairs = await actions.replay(slug, replayform.to_request(replayform.from_values(form, now_ms())))
            target = f"/runs?function={quote(slug)}&notice=replayed&n={len(pairs)}"
            return target, {"function": slug, "replayed": len(pairs),
                            "runs": [{"run_id": new, "replay_of": old} for new, old in pairs]}

        async def redo(form: dict[str, str], exc: InputError) -> Response:
            if function_page is None:
                return chrome.error(request, exc, False)
            return await function_page(request, slug, posted=replayform.from_values(form, now_ms()), error=exc)

        return await act(request, Route.ACTION, do, redo)

    @router.post("/functions/{slug}/pause")
    async def pause(request: Request, slug: str) -> Response:
        async def do(form: dict[str, str]) -> tuple[str, Any]:
            assert actions is not None
            changed = await actions.pause_function(slug)
            return f"/functions/{quote(slug)}?notice=paused", {"function_id": slug, "paused": True,
                                                               "changed": changed, "resumed_calls": 0}

        return await act(request, Route.ACTION, do)

    @router.post("/functions/{slug}/unpause")
    async def unpause(request: Request, slug: str) -> Response:
        async def do(form: dict[str, str]) -> tuple[str, Any]:
            assert actions is not None
            changed, resumed = await actions.unpause_function(slug)
            return f"/functions/{quote(slug)}?notice=unpaused&n={resumed}", {
                "function_id": slug, "paused": False, "changed": changed, "resumed_calls": resumed}

        return await act(request, Route.ACTION, do)
