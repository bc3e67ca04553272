"""``create_router``: the dashboard's routes in one place, each page and its JSON twin on one handler.

The read pages are ``views.py``, the posts ``forms.py``; this module only
wires them (and the shared static files and login of ``agentcmd.web``)
to paths, so neither of the two needs to import the other.
"""

from __future__ import annotations

from fastapi import APIRouter

from agentcmd.engine.dashboard import forms, live
from agentcmd.engine.dashboard.buttons import DashboardActions
from agentcmd.engine.dashboard.reads import DashboardReads
from agentcmd.engine.dashboard.render import STATIC_PREFIX, Chrome
from agentcmd.engine.dashboard.views import (
    Dashboard,
    DashboardConfig,
    apps_page,
    event_page,
    events_page,
    function_page,
    run_page,
    runs_page,
)
from agentcmd.web import login, static
from agentcmd.web.site import provide


def create_router(reader: DashboardReads, config: DashboardConfig,
                  actions: DashboardActions | None = None) -> APIRouter:
    """The dashboard's routes (pages, twins, static files, forms and login)."""
    chrome = Chrome.build(config.mode, config.db_description, config.auth, has_actions=actions is not None,
                          db_problem=config.db_problem)
    dashboard = Dashboard(reader, chrome, actions, config.page_size, config.changes, config.closing)
    router = APIRouter(include_in_schema=False, dependencies=[provide(chrome, dashboard=dashboard)])
    for path, stream in live.ROUTES:     # before the pages: "/runs/{run_id}" would take "/runs/live"
        router.add_api_route(path, stream, methods=["GET"])
    # Each page's JSON twin first: "/runs/{run_id}" would otherwise swallow "X.json".
    for paths, handler in ((("/runs.json", "/", "/runs"), runs_page),
                           (("/runs/{run_id}.json", "/runs/{run_id}"), run_page),
                           (("/events.json", "/events"), events_page),
                           (("/events/{event_id}.json", "/events/{event_id}"), event_page),
                           (("/apps.json", "/apps"), apps_page),
                           (("/functions/{slug}.json", "/functions/{slug}"), function_page)):
        for path in paths:
            router.add_api_route(path, handler, methods=["GET"])
    static.add_static_route(router, STATIC_PREFIX)
    login.add_login_routes(router)
    forms.add_form_routes(router)
    return router
