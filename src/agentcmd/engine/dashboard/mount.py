"""``dashboard_app(engine)``: the dashboard as one ASGI app, for ``build_app`` to mount at ``/``.

The engine's own routes (``/e``, ``/fn``, ``/v1``, ``/v0``, ``/health``)
come first in its route list, so the dashboard only answers what they do
not. Auth comes from the engine's config (mode, bind host,
``--dashboard-auth``, dashboard token); ``WebAuth.build`` raises a
``ConfigError`` when a login is needed but no token exists, which the CLI
checks before it binds (``check_dashboard_config``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from agentcmd.engine.dashboard.actions import EngineActions
from agentcmd.engine.dashboard.reads import DashboardReads
from agentcmd.engine.dashboard.views import DashboardConfig, create_router
from agentcmd.engine.store import now_ms
from agentcmd.errors import NotFoundError
from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth
from agentcmd.webauth.options import WebOptions

if TYPE_CHECKING:
    from fastapi import FastAPI

    from agentcmd.engine.app import Engine
    from agentcmd.engine.flow.replay import ReplayRequest
    from agentcmd.engine.store.models import NewEvent

T = TypeVar("T")


class _EngineStore:
    """The engine's store, looked up at call time (it is opened after the app may be built)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._engine.store.read(fn)

    async def cancel_run(self, run_id: str, reason: str) -> bool | None:
        result = await self._engine.store.cancel_run(run_id, reason)
        self._engine.worker.wake()
        return result

    async def insert_events(self, events: list[NewEvent]) -> list[str]:
        return await self._engine.store.insert_events(events)


def build_auth(mode: str, host: str, dashboard_auth: bool, token: str | None,
               options: WebOptions | None = None) -> WebAuth:
    """The dashboard's auth for an engine; raises ConfigError (exit 2) if a login is needed but impossible."""
    return WebAuth.build(Mode(mode), host, dashboard_auth, token, options=options)


def dashboard_app(engine: Engine) -> FastAPI:
    from fastapi import FastAPI

    config = engine.config
    auth = build_auth(config.mode, config.host, config.dashboard_auth, config.dashboard_token, config.web)
    store = _EngineStore(engine)

    async def accept(events: list[dict[str, Any]]) -> list[str]:
        from agentcmd.engine.ingest import parse_events

        ids = await engine.store.insert_events(parse_events(events, now_ms()))
        engine.worker.wake()
        return ids

    async def sync_url(url: str) -> str | None:
        from agentcmd.engine.appsync import Syncer

        syncer = engine.syncer or Syncer(engine.store, [url], engine.server_kind,
                                         config.signing_key if config.production else None,
                                         config.poll_interval, repoll_healthy=False)
        return await syncer.sync_one(url)

    async def replay(slug: str, request: ReplayRequest) -> list[tuple[str, str]]:
        from agentcmd.engine.flow import replay as replaying

        fn = replaying.find_function(engine, slug)
        if fn is None:
            raise NotFoundError(f"no active function {slug!r}",
                                "pick a function from the apps page (an archived function cannot run again)")
        return await replaying.replay_runs(engine, fn, request)

    async def set_paused(slug: str, pause: bool) -> tuple[bool, int]:
        from agentcmd.engine.flow import pause as pausing

        found = pausing.find_slug(engine, slug)
        if found is None:
            raise NotFoundError(f"no active function {slug!r}",
                                "pick a function from the apps page (an archived function cannot be paused)")
        return await pausing.set_paused(engine, found, pause)

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(create_router(
        DashboardReads(store),
        DashboardConfig(Mode(config.mode), auth, db_description=engine.store_description(),
                        db_problem=engine.database_problem),
        EngineActions(store, accept=accept, sync_url=sync_url, replay=replay,
                      set_paused=set_paused)))
    return app
