"""``dashboard_app(commands)``: the dashboard as one ASGI app, for ``build_app`` to mount at ``/``.

The engine's own routes (``/e``, ``/fn``, ``/v1``, ``/v0``, ``/health``)
come first in its route list, so the dashboard only answers what they do
not. It reads through the command facade's ``read`` (the store's read path)
and its buttons are the facade's commands (``actions.EngineActions``); it
never sees the ``Engine`` object. Auth comes from the engine's config (mode,
bind host, ``--dashboard-auth``, dashboard token); ``WebAuth.build`` raises a
``ConfigError`` when a login is needed but no token exists, which the CLI
checks before it binds (``check_dashboard_config``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentcmd.engine.dashboard.actions import EngineActions
from agentcmd.engine.dashboard.reads import DashboardReads
from agentcmd.engine.dashboard.router import create_router
from agentcmd.engine.dashboard.views import DashboardConfig
from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth
from agentcmd.webauth.options import WebOptions

if TYPE_CHECKING:
    from fastapi import FastAPI

    from agentcmd.engine.commands import Commands


def build_auth(mode: str, host: str, dashboard_auth: bool, token: str | None,
               options: WebOptions | None = None) -> WebAuth:
    """The dashboard's auth for an engine; raises ConfigError (exit 2) if a login is needed but impossible."""
    return WebAuth.build(Mode(mode), host, dashboard_auth, token, options=options)


def dashboard_app(commands: Commands) -> FastAPI:
    from fastapi import FastAPI

    config = commands.config
    auth = build_auth(config.mode, config.host, config.dashboard_auth, config.dashboard_token, config.web)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(create_router(
        DashboardReads(commands),
        DashboardConfig(Mode(config.mode), auth, db_description=commands.store_description(),
                        db_problem=commands.database_problem, changes=commands.changes,
                        closing=commands.closing),
        EngineActions(commands)))
    return app
