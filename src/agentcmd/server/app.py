"""Build the FastAPI app: the SDK's serve endpoint, health, the app API.

``create_app(project_dir)`` discovers the project's workflows (a broken
file is logged and listed under ``errors`` in ``/api/workflows``; the
others are served), binds the workflow runtime (project dir, data dir, the
engine's run status for the cancel watcher) and mounts the official SDK's
``serve()`` at ``SERVE_PATH``.

Every request passes ``ProtectMiddleware`` first (``access.py``: the
engine dashboard's policy on the BIND address): beyond loopback in
production, or with ``--dashboard-auth``, the API needs the signing key as
bearer and the workflow views a dashboard token login.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import inngest
import inngest.fast_api
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from agentcmd import handover
from agentcmd.errors import AgentcmdError
from agentcmd.httpedge import EdgeMiddleware
from agentcmd.observe.appmetrics import metrics_response
from agentcmd.observe.runlog import RunLogMiddleware
from agentcmd.server import SERVE_PATH, workspacepolicy
from agentcmd.server.access import AppAuth, sdk_mode
from agentcmd.server.api import router
from agentcmd.server.edge import app_edge_policy
from agentcmd.server.engine import EngineRestClient
from agentcmd.server.live import router as live_router
from agentcmd.server.protect import ProtectMiddleware
from agentcmd.server.resume import router as resume_router
from agentcmd.server.sdkguard import SdkGuardMiddleware
from agentcmd.server.shutdown import InterruptMiddleware
from agentcmd.workflows import streamlog
from agentcmd.workflows.context import Runtime, set_runtime
from agentcmd.workflows.define import APP_ID
from agentcmd.workflows.loading import Discovered
from agentcmd.workflows.served import discover_served

log = logging.getLogger("agentcmd.server")

__all__ = ["APP_ID", "create_app", "create_client"]


def create_client(signing_key: str | None = None, event_key: str | None = None) -> inngest.Inngest:
    """The SDK client; dev vs production is decided by the SDK from INNGEST_DEV.

    The keys are arguments (handed over by pipe, ``agentcmd.handover``, unless given), not environment
    variables.
    """
    return inngest.Inngest(app_id=APP_ID, logger=log,
                           signing_key=signing_key or handover.key("INNGEST_SIGNING_KEY"),
                           event_key=event_key or handover.key("INNGEST_EVENT_KEY"))


@dataclass(frozen=True)
class LoadedWorkflows:
    """What an app server and a connect worker (``server/connectworker.py``) both start from."""

    runtime: Runtime
    engine: EngineRestClient
    discovered: Discovered


def load_workflows(project_dir: Path | None = None, *, entry_points: bool = True) -> LoadedWorkflows:
    """Bind the workflow runtime (project, data dir, the engine's run status) and discover the workflows.

    A broken workflow file is logged and listed in ``discovered.errors``; the others load.
    """
    runtime = Runtime.from_settings(project_dir)
    from agentcmd.config import load_settings

    streamlog.configure(**load_settings().streams.model_dump())  # the kept-output caps
    engine = EngineRestClient.from_env()
    runtime.run_status = engine.run_status
    set_runtime(runtime)
    discovered = discover_served(runtime.project_dir, runtime.data_dir, entry_points=entry_points)
    for err in discovered.errors:
        log.error("workflow not loaded: %s", err)
    return LoadedWorkflows(runtime, engine, discovered)


def app_auth(host: str = "127.0.0.1", dashboard_auth: bool = False) -> AppAuth:
    """Auth for an app server bound to ``host``, in the SDK's mode; secrets are read only when needed.

    The bearer is the SDK's signing key (handed over by the supervisor in
    production, or ``INNGEST_SIGNING_KEY``), else the configured one (dev has no key in
    its environment). Raises ConfigError when a login is needed but impossible.
    """
    from agentcmd.config import load_settings
    from agentcmd.mode import Mode
    from agentcmd.webauth.loopback import is_loopback_host
    from agentcmd.webauth.options import WebOptions
    from agentcmd.webauth.policy import dashboard_locked

    mode = sdk_mode()
    settings = load_settings()
    web = WebOptions.from_settings(settings)  # trusted proxies, public URL, revoked sessions
    if mode is not Mode.PRODUCTION and not dashboard_locked(mode, is_loopback_host(host), dashboard_auth):
        return AppAuth.build(mode, host, dashboard_auth=dashboard_auth, options=web)
    key = handover.key("INNGEST_SIGNING_KEY") or settings.secret("signing_key")
    return AppAuth.build(mode, host, dashboard_auth=dashboard_auth, token=settings.secret("dashboard_token"),
                         signing_key=key, options=web)


async def _agentcmd_error(_: Request, exc: AgentcmdError) -> JSONResponse:
    return JSONResponse(exc.to_json(), status_code=exc.http_status)


async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [{"path": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg"))}
                for e in exc.errors()]
    return JSONResponse({"error": "invalid request: " + "; ".join(f"{p['path']}: {p['message']}"
                                                                 for p in problems),
                         "code": "invalid_input", "hint": "send a JSON object body",
                         "details": problems}, status_code=422)


def create_app(project_dir: Path | None = None, *, entry_points: bool = True, host: str = "127.0.0.1",
               dashboard_auth: bool = False, auth: AppAuth | None = None,
               allowed_hosts: Sequence[str] = ()) -> FastAPI:
    """The app server for a bind to ``host`` (the auth policy depends on it, not on clients' addresses)."""
    auth = auth or app_auth(host, dashboard_auth)
    loaded = load_workflows(project_dir, entry_points=entry_points)
    runtime, engine, discovered = loaded.runtime, loaded.engine, loaded.discovered
    from agentcmd.config import load_settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from agentcmd.server import notify

        notifier = await notify.start(app)  # run ends and waits to webhooks/Slack/desktop (server/notify/)
        app.state.workspace_policy = workspacepolicy.start(runtime, engine)  # workspaces.prune_after
        yield
        await workspacepolicy.stop(app.state.workspace_policy)
        if notifier is not None:
            await notifier.stop()
        await streamlog.flush_all()  # the last streamed events reach the disk before the process ends
        await engine.aclose()

    app = FastAPI(title="agentcmd app server", docs_url=None, redoc_url=None, lifespan=lifespan)
    client = create_client()
    functions: list[inngest.Function[Any]] = list(discovered.workflows.values())
    app.state.discovered = discovered
    app.state.engine = engine
    app.state.client = client
    app.state.runtime = runtime
    app.state.auth = auth

    app.add_exception_handler(AgentcmdError, _agentcmd_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _bad_request)  # type: ignore[arg-type]

    @app.get("/health")
    def health(request: Request) -> dict[str, object]:
        body: dict[str, object] = {"status": "ok", "functions": len(functions), "load_errors": len(discovered.errors)}
        # Open to anyone (supervisors, load balancers): where the project lives only for those who may look.
        if not auth.locked or auth.bearer_ok(request.headers.get("authorization")) or auth.web.logged_in(request):
            body["project_dir"] = str(runtime.project_dir)
        return body

    app.add_api_route("/metrics", metrics_response, methods=["GET"], include_in_schema=False)  # observe/appmetrics.py

    # The SDK first: otherwise GET /api/workflows/inngest (its introspection) is the API's GET /api/workflows/{id}.
    inngest.fast_api.serve(app, client, functions, serve_path=SERVE_PATH)
    from agentcmd.server.reload import attach_reload

    attach_reload(app, functions, runtime.project_dir, entry_points=entry_points, host=host)  # POST /api/reload
    from agentcmd.server.webhooks import attach_webhooks

    attach_webhooks(app, runtime.data_dir, load_settings().webhooks)  # POST /api/webhooks/... (server/webhooks.py)
    app.include_router(router)
    from agentcmd.server.questions import router as questions_router

    app.include_router(questions_router)  # approvals and questions (server/questions.py)
    app.include_router(resume_router)  # POST /api/runs/{id}/resume (server/resume.py)
    app.include_router(live_router)  # a run's kept stream and live feed (server/live.py)
    from agentcmd.ui.views import create_router as ui_router

    app.include_router(ui_router(auth.web))  # workflow views at / (issue 7)
    app.add_middleware(RunLogMiddleware)  # the SDK call's run_id/step_id on every log line (observe/runlog.py)
    app.add_middleware(InterruptMiddleware)  # SDK calls in flight at shutdown: 503-interrupted (docs/engine.md)
    app.add_middleware(SdkGuardMiddleware, signing_key=client.signing_key)  # syncs and replays (sdkguard.py)
    app.add_middleware(ProtectMiddleware, auth=auth)
    app.add_middleware(EdgeMiddleware, policy=app_edge_policy(auth, host, allowed_hosts, functions))  # outermost
    return app
