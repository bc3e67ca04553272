"""The engine dashboard's read pages, each with a JSON twin.

``create_router(reader, chrome_config)`` returns a FastAPI router to include
in the engine app at ``/``. Every page is one view function producing one
``data`` dict, rendered as HTML (``/runs``) or JSON (``/runs.json`` or
``/runs?format=json``); see ``render.py``. The pages read only through a
``DashboardReads`` (``reads.py``) and never import the executor.

Pages: ``/`` and ``/runs`` (filters: status, function, since; keyset paging
with ``before``), ``/runs/{id}`` (timeline of steps, waits with deadlines,
history), ``/events``, ``/events/{id}`` (payload and the runs it started),
``/apps`` (apps, their functions, sync status), ``/functions/{slug}`` (its
flow control, paused state, parked calls, skipped events, latest runs and
the Replay form, ``replayform.py``). The buttons and the login live in
``forms.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agentcmd.engine.dashboard import replayform
from agentcmd.engine.dashboard.buttons import DashboardActions
from agentcmd.engine.dashboard.reads import DashboardReads
from agentcmd.engine.dashboard.render import HERE, Chrome, version_of, wants_json
from agentcmd.engine.store.queries.models import RUN_STATUSES, RunFilter, as_json, parse_since
from agentcmd.errors import AgentcmdError, InputError, NotFoundError
from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth

PAGE_SIZE = 50
SINCE_CHOICES = (("", "any time"), ("15m", "last 15 minutes"), ("1h", "last hour"), ("24h", "last 24 hours"),
                 ("7d", "last 7 days"))
STATIC_FILES = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


@dataclass
class DashboardConfig:
    """How the engine runs, as the dashboard must show it (never any key)."""

    mode: Mode
    auth: WebAuth
    db_description: str | None = None  # the SQLite path in production
    page_size: int = PAGE_SIZE
    db_problem: Callable[[], str | None] = lambda: None   # why the database cannot be written now, if so


def parse_limit(value: str | None, default: int) -> int:
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 200:
        raise InputError(f"'limit' must be a whole number from 1 to 200, not {value!r}", "use e.g. limit=50")
    return int(value)


def create_router(reader: DashboardReads, config: DashboardConfig,
                  actions: DashboardActions | None = None) -> APIRouter:
    """The dashboard's routes (pages, twins, static files, forms and login)."""
    from agentcmd.engine.dashboard.forms import add_form_routes

    chrome = Chrome(config.mode, config.db_description, config.auth, has_actions=actions is not None,
                    db_problem=config.db_problem)
    router = APIRouter(include_in_schema=False)
    auth = config.auth

    def deny(request: Request, as_twin: bool) -> Response:
        if as_twin:
            return chrome.twin({"error": "log in to the dashboard first", "code": "unauthorized",
                                "hint": "POST the dashboard token to /login, or open /login in a browser"},
                               status_code=401, request=request)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    async def runs_page(request: Request, suffix_json: bool = False) -> Response:
        started = time.perf_counter()
        as_twin = wants_json(request, suffix_json)
        if not auth.page_allowed(request):
            return deny(request, as_twin)
        q = request.query_params
        try:
            status = q.get("status") or None
            if status is not None and status not in RUN_STATUSES:
                raise InputError(f"unknown status {status!r}", f"use one of {', '.join(RUN_STATUSES)}")
            since_raw = q.get("since") or ""
            filt = RunFilter(status=status, function=q.get("function") or None,
                             since=parse_since(since_raw, int(time.time() * 1000)))
            limit = parse_limit(q.get("limit"), config.page_size)
        except AgentcmdError as exc:
            return chrome.error(request, exc, as_twin)
        before = q.get("before") or None
        page = await reader.list_runs(filt, before, limit)
        counts = await reader.count_runs(filt)
        functions = await reader.list_functions()
        shown = next((f for f in functions if f.slug == filt.function), None)
        data: dict[str, Any] = {
            "runs": page.items, "next_cursor": page.next_cursor, "counts": counts,
            "total": sum(counts.values()),
            "filters": {"status": status, "function": filt.function, "since": since_raw, "before": before,
                        "limit": limit},
            "function": shown,
        }
        version = version_of([(r.run_id, r.status, r.ended_at, r.waiting) for r in page.items], counts,
                             shown.paused_at if shown else None)
        if as_twin:
            return chrome.twin(data, version=version, started=started)
        base = {k: v for k, v in (("status", status), ("function", filt.function), ("since", since_raw)) if v}
        return chrome.page(request, "runs.html", {
            **data, "statuses": RUN_STATUSES, "functions": functions, "since_choices": SINCE_CHOICES,
            "base_query": base, "next_url": _url("/runs", {**base, "before": page.next_cursor})
            if page.next_cursor else None, "first_url": _url("/runs", base) if before else None,
        }, title="Runs", nav="runs", poll=_url("/runs.json", {**base, **({"before": before} if before else {})}),
            version=version, started=started)

    async def run_page(request: Request, run_id: str, suffix_json: bool = False) -> Response:
        started = time.perf_counter()
        as_twin = wants_json(request, suffix_json)
        if not auth.page_allowed(request):
            return deny(request, as_twin)
        run = await reader.get_run(run_id)
        if run is None:
            return chrome.error(request, NotFoundError(f"no run with id {run_id!r}",
                                                       "pick a run from the runs page"), as_twin)
        steps = await reader.run_steps(run_id)
        waits = await reader.run_waits(run_id)
        history = await reader.run_history(run_id)
        data = {"run": run, "steps": steps, "waits": waits, "history": history}
        version = version_of(run.summary.status, run.summary.waiting, len(steps), len(history),
                             [(w.kind, w.reason) for w in waits],
                             run.replays, run.function_paused_at)
        if as_twin:
            return chrome.twin(data, version=version, started=started)
        # A bar per step on one time axis: from (end - duration) to end, as a share of the run's span.
        first = min([s.ended_at - s.duration_ms for s in steps] + [run.summary.started_at or run.summary.created_at])
        last = max([s.ended_at for s in steps] + [run.summary.ended_at or int(time.time() * 1000)])
        span = max(1, last - first)
        bars = {s.step_id: (100 * (s.ended_at - s.duration_ms - first) / span, max(0.5, 100 * s.duration_ms / span))
                for s in steps}
        return chrome.page(request, "run.html", {**data, "bars": bars, "final": run.summary.final},
                           title=f"Run {run_id}", nav="runs",
                           poll=None if run.summary.final else f"/runs/{run_id}.json", version=version,
                           started=started)

    async def events_page(request: Request, suffix_json: bool = False) -> Response:
        started = time.perf_counter()
        as_twin = wants_json(request, suffix_json)
        if not auth.page_allowed(request):
            return deny(request, as_twin)
        q = request.query_params
        try:
            limit = parse_limit(q.get("limit"), config.page_size)
        except AgentcmdError as exc:
            return chrome.error(request, exc, as_twin)
        name = q.get("name") or None
        before = q.get("before") or None
        page = await reader.list_events(name, before, limit)
        data = {"events": page.items, "next_cursor": page.next_cursor, "filters": {"name": name, "before": before}}
        version = version_of([(e.event_id, e.run_count) for e in page.items])
        if as_twin:
            return chrome.twin(data, version=version, started=started)
        base = {"name": name} if name else {}
        return chrome.page(request, "events.html", {
            **data, "next_url": _url("/events", {**base, "before": page.next_cursor}) if page.next_cursor else None,
            "first_url": _url("/events", base) if before else None,
        }, title="Events", nav="events", poll=_url("/events.json", base) if not before else None,
            version=version, started=started)

    async def event_page(request: Request, event_id: str, suffix_json: bool = False) -> Response:
        as_twin = wants_json(request, suffix_json)
        if not auth.page_allowed(request):
            return deny(request, as_twin)
        event = await reader.get_event(event_id)
        if event is None:
            return chrome.error(request, NotFoundError(f"no event with id {event_id!r}",
                                                       "pick an event from the events page"), as_twin)
        runs = await reader.event_runs(event_id)
        skips = await reader.event_skips(event_id)
        data = {"event": event, "runs": runs, "skips": skips}
        version = version_of([(r.run_id, r.status, r.waiting) for r in runs], len(skips))
        if as_twin:
            return chrome.twin(data, version=version)
        return chrome.page(request, "event.html", data, title=f"Event {event.name}", nav="events",
                           poll=f"/events/{event_id}.json", version=version)

    async def apps_page(request: Request, suffix_json: bool = False) -> Response:
        as_twin = wants_json(request, suffix_json)
        if not auth.page_allowed(request):
            return deny(request, as_twin)
        apps = await reader.list_apps()
        data = {"apps": apps}
        version = version_of([(a.app_id, a.synced_at, a.error, [(f.slug, f.paused_at) for f in a.functions])
                              for a in apps])
        if as_twin:
            return chrome.twin(data, version=version)
        return chrome.page(request, "apps.html", data, title="Apps", nav="apps", poll="/apps.json",
                           version=version)

    async def function_page(request: Request, slug: str, suffix_json: bool = False,
                            posted: replayform.ReplayForm | None = None, error: AgentcmdError | None = None
                            ) -> Response:
        """A function's page; ``posted``/``error``: a replay post that was refused, shown on its form."""
        started = time.perf_counter()
        as_twin = wants_json(request, suffix_json)
        if not auth.page_allowed(request):
            return deny(request, as_twin)
        detail = await reader.get_function(slug)
        if detail is None:
            return chrome.error(request, NotFoundError(f"no function {slug!r}", "pick a function from the apps page"),
                                as_twin)
        q = request.query_params
        form = posted or replayform.from_values(q, int(time.time() * 1000))
        matching: int | None = None
        problem = error
        if problem is None and q.get("preview"):
            try:
                req = replayform.to_request(form)
                matching = await reader.replay_matches(slug, req)
                if matching == 0:
                    problem = replayform.nothing_to_replay(slug, req)
            except AgentcmdError as exc:
                problem = exc
        replay = {**form.as_json(), "matching": matching,
                  "error": (f"{problem.what} ({problem.fix})" if problem.fix else problem.what) if problem else None}
        data = {"function": detail.function, "flow": detail.flow, "waiting": detail.waiting, "skips": detail.skips,
                "runs": detail.runs, "replay": replay}
        version = version_of(detail.function.paused_at, [(w.key, w.calls) for w in detail.waiting],
                             [s.at for s in detail.skips[:1]], [(r.run_id, r.status, r.waiting) for r in detail.runs])
        status_code = problem.http_status if problem is not None and error is not None else 200
        if as_twin:
            return chrome.twin(data, version=version, started=started, status_code=status_code)
        return chrome.page(request, "function.html", {**data, "form": form,
                                                      "status_choices": replayform.STATUS_CHOICES},
                           title=f"Function {detail.function.name}", nav="apps", version=version, started=started,
                           # After a refused post the address is the post's: a reload there would not be the page.
                           poll=None if posted else f"/functions/{_quote(slug)}.json", status_code=status_code)

    # JSON-suffixed routes first: "/runs/{run_id}" would otherwise swallow "X.json".
    @router.get("/runs.json")
    async def runs_json(request: Request) -> Response:
        return await runs_page(request, True)

    @router.get("/")
    @router.get("/runs")
    async def runs_html(request: Request) -> Response:
        return await runs_page(request)

    @router.get("/runs/{run_id}.json")
    async def run_json(request: Request, run_id: str) -> Response:
        return await run_page(request, run_id, True)

    @router.get("/runs/{run_id}")
    async def run_html(request: Request, run_id: str) -> Response:
        return await run_page(request, run_id)

    @router.get("/events.json")
    async def events_json(request: Request) -> Response:
        return await events_page(request, True)

    @router.get("/events")
    async def events_html(request: Request) -> Response:
        return await events_page(request)

    @router.get("/events/{event_id}.json")
    async def event_json(request: Request, event_id: str) -> Response:
        return await event_page(request, event_id, True)

    @router.get("/events/{event_id}")
    async def event_html(request: Request, event_id: str) -> Response:
        return await event_page(request, event_id)

    @router.get("/apps.json")
    async def apps_json(request: Request) -> Response:
        return await apps_page(request, True)

    @router.get("/apps")
    async def apps_html(request: Request) -> Response:
        return await apps_page(request)

    @router.get("/functions/{slug}.json")
    async def function_json(request: Request, slug: str) -> Response:
        return await function_page(request, slug, True)

    @router.get("/functions/{slug}")
    async def function_html(request: Request, slug: str) -> Response:
        return await function_page(request, slug)

    @router.get("/_dashboard/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return Response("not found", status_code=404, media_type="text/plain")
        body = (HERE / "static" / name).read_bytes()
        return Response(body, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"})

    add_form_routes(router, chrome, actions, function_page)
    return router


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


def _url(path: str, params: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(clean)}" if clean else path


__all__ = ["DashboardConfig", "as_json", "create_router"]
