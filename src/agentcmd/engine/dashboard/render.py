"""The engine dashboard's chrome: the mode banner, the database's state, its nav and buttons.

Rendering itself (Jinja, filters, page or JSON twin, headers) is shared with
the app server's workflow views: ``agentcmd.web``. A twin's rows go through
``reader.as_json`` (times as RFC 3339, like the REST API).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request

from agentcmd.engine.store.queries.models import as_json
from agentcmd.mode import Mode
from agentcmd.web.render import make_env
from agentcmd.web.site import Site
from agentcmd.webauth.guard import WebAuth
from agentcmd.webauth.policy import Need, Route

HERE = Path(__file__).parent
STATIC_PREFIX = "/_dashboard/static/"


@dataclass
class Chrome(Site):
    """What every dashboard page shows around its content: mode banner, nav, login state."""

    mode: Mode = Mode.DEV
    db_description: str | None = None
    has_actions: bool = False
    db_problem: Callable[[], str | None] = field(default=lambda: None)

    @classmethod
    def build(cls, mode: Mode, db_description: str | None, auth: WebAuth, *, has_actions: bool = False,
              db_problem: Callable[[], str | None] = lambda: None) -> Chrome:
        return cls(auth, make_env(HERE / "templates"), "agentcmd engine", STATIC_PREFIX, ("/runs", "Back to runs"),
                   "This dashboard needs the dashboard token.", "engine's machine", as_json,
                   mode=mode, db_description=db_description, has_actions=has_actions, db_problem=db_problem)

    def problem(self, request: Request) -> str | None:
        """A database that cannot be written right now (disk full, locked): said on every page."""
        problem = self.db_problem()
        if problem is None:
            return None
        if not self.auth.page_allowed(request):
            return "the engine database cannot be written right now; new events are refused until it can"
        return problem

    def banner(self, request: Request) -> str:
        """The mode banner; the database path only for those who may read the dashboard."""
        if self.mode is Mode.PRODUCTION:
            where = self.db_description if self.auth.page_allowed(request) and self.db_description else None
            return f"persistent: history is kept in {where or 'the engine database'}"
        return "ephemeral: history is lost on restart"

    def can_send_events(self) -> bool:
        return self.has_actions and self.auth.need(Route.SEND_EVENT) is not Need.FORBIDDEN

    def chrome(self, request: Request) -> dict[str, Any]:
        return {"mode": self.mode.value, "banner": self.banner(request), "db_problem": self.problem(request),
                "can_read": self.auth.page_allowed(request), "has_actions": self.has_actions,
                "can_send": self.can_send_events(), "notice_n": _count(request.query_params.get("n"))}

    def twin_extra(self, request: Request) -> dict[str, Any]:
        extra: dict[str, Any] = {"mode": self.mode.value, "banner": self.banner(request)}
        problem = self.problem(request)
        if problem:
            extra["database_problem"] = problem
        return extra


def _count(value: str | None) -> str:
    """A notice's number (``?n=3`` after a replay); anything else is not shown."""
    return value if value and value.isdigit() and len(value) < 7 else ""
