"""The engine dashboard's read pages, each with a JSON twin.

``router.create_router`` maps them to paths, for the engine app to
include at ``/``. Every page is one view function producing one
``data`` dict, rendered as HTML (``/runs``) or JSON (``/runs.json`` or
``/runs?format=json``); see ``render.py``. The pages read only through a
``DashboardReads`` (``reads.py``) and never import the executor.

Pages: ``/`` and ``/runs`` (filters: status, function, since; keyset paging
with ``before``), ``/runs/{id}`` (timeline of steps, waits with deadlines,
history), ``/events``, ``/events/{id}`` (payload and the runs it started),
``/apps`` (apps, their functions, sync status), ``/functions/{slug}`` (its
flow control, paused state, parked calls, skipped events, latest runs and
the Replay form, ``replayform.py``). The buttons and the login live in
``forms.py``, the login ``agentcmd.web.login``.

Handlers are module-level functions; each finds the ``Dashboard`` (reader,
actions, chrome) its router was built with via ``dashboard_of(request)``.
One handler serves a page and its JSON twin (``/runs`` and ``/runs.json``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agentcmd.engine.changes import Changes
from agentcmd.engine.dashboard import replayform
from agentcmd.engine.dashboard.buttons import DashboardActions
from agentcmd.engine.dashboard.reads import DashboardReads
from agentcmd.engine.dashboard.render import Chrome
from agentcmd.engine.store.queries.models import (
    RUN_STATUSES,
    FunctionDetail,
    FunctionRow,
    Page,
    RunFilter,
    RunSummary,
    as_json,
    parse_since,
)
from agentcmd.errors import AgentcmdError, InputError, NotFoundError
from agentcmd.mode import Mode
from agentcmd.web.render import version_of, wants_json
from agentcmd.webauth.guard import WebAuth

PAGE_SIZE = 50
APP_SERVE_PATH = "/api/workflows/inngest"
"""Where an agentcmd app server serves the SDK (``agentcmd.server.SERVE_PATH``; not imported: no app code here)."""
SINCE_CHOICES = (("", "any time"), ("15m", "last 15 minutes"), ("1h", "last hour"), ("24h", "last 24 hours"),
                 ("7d", "last 7 days"))


@dataclass
class DashboardConfig:
    """How the engine runs, as the dashboard must show it (never any key)."""

    mode: Mode
    auth: WebAuth
    db_description: str | None = None  # the SQLite path in production
    page_size: int = PAGE_SIZE
    db_problem: Callable[[], str | None] = lambda: None   # why the database cannot be written now, if so
    changes: Changes | None = None        # the engine's change notifier: live streams wait on it (live.py)
    closing: Callable[[], bool] = lambda: False   # the engine is shutting down: live streams end


def parse_limit(value: str | None, default: int) -> int:
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 200:
        raise InputError(f"'limit' must be a whole number from 1 to 200, not {value!r}", "use e.g. limit=50")
    return int(value)


@dataclass
class Dashboard:
    """What the handlers of one dashboard router read and render with."""

    reader: DashboardReads
    chrome: Chrome
    actions: DashboardActions | None
    page_size: int
    changes: Changes | None = None
    closing: Callable[[], bool] = lambda: False


def dashboard_of(request: Request) -> Dashboard:
    return cast(Dashboard, request.state.dashboard)


def deny(request: Request, as_twin: bool) -> Response:
    """Not logged in: a twin gets 401 JSON, a page goes to the login form and back."""
    if as_twin:
        return dashboard_of(request).chrome.twin(
            request, {"error": "log in to the dashboard first", "code": "unauthorized",
                      "hint": "POST the dashboard token to /login, or open /login in a browser"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)


def _open(request: Request) -> tuple[Dashboard, bool, Response | None]:
    """The dashboard, whether the JSON twin is asked for, and the answer to send instead if not logged in."""
    as_twin = wants_json(request)
    d = dashboard_of(request)
    return d, as_twin, None if d.chrome.auth.page_allowed(request) else deny(request, as_twin)


def run_filter(request: Request, page_size: int) -> tuple[RunFilter, str, int]:
    """The runs page's filters from its query; an ``InputError`` names the bad one."""
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in RUN_STATUSES:
        raise InputError(f"unknown status {status!r}", f"use one of {', '.join(RUN_STATUSES)}")
    since_raw = q.get("since") or ""
    filt = RunFilter(status=status, function=q.get("function") or None,
                     since=parse_since(since_raw, int(time.time() * 1000)))
    return filt, since_raw, parse_limit(q.get("limit"), page_size)


async def runs_page(request: Request) -> Response:
    started = time.perf_counter()
    d, as_twin, refused = _open(request)
    if refused is not None:
        return refused
    try:
        filt, since_raw, limit = run_filter(request, d.page_size)
    except AgentcmdError as exc:
        return d.chrome.error(request, exc, as_twin)
    before = request.query_params.get("before") or None
    data, version, page, functions = await runs_data(d, filt, since_raw, limit, before)
    if as_twin:
        return d.chrome.twin(request, data, version=version, started=started)
    base = {k: v for k, v in (("status", filt.status), ("function", filt.function), ("since", since_raw)) if v}
    here = {**base, **({"before": before} if before else {})}
    return d.chrome.page(request, "runs.html", {
        **data, "statuses": RUN_STATUSES, "functions": functions, "since_choices": SINCE_CHOICES,
        "base_query": base, "next_url": _url("/runs", {**base, "before": page.next_cursor})
        if page.next_cursor else None, "first_url": _url("/runs", base) if before else None,
    }, title="Runs", nav="runs", poll=_url("/runs.json", here), live=_url("/runs/live", {**here, "v": version}),
        version=version, started=started)


async def runs_data(d: Dashboard, filt: RunFilter, since_raw: str, limit: int, before: str | None
                    ) -> tuple[dict[str, Any], str, Page[RunSummary], list[FunctionRow]]:
    """The runs page's data (its twin's) and version (the live stream's too), the page of runs, the functions."""
    page = await d.reader.list_runs(filt, before, limit)
    counts = await d.reader.count_runs(filt)
    functions = await d.reader.list_functions()
    shown = next((f for f in functions if f.slug == filt.function), None)
    data: dict[str, Any] = {
        "runs": page.items, "next_cursor": page.next_cursor, "counts": counts,
        "total": sum(counts.values()),
        "filters": {"status": filt.status, "function": filt.function, "since": since_raw, "before": before,
                    "limit": limit},
        "function": shown,
    }
    version = version_of([(r.run_id, r.status, r.ended_at, r.waiting) for r in page.items], counts,
                         shown.paused_at if shown else None)
    return data, version, page, functions


async def run_page(request: Request, run_id: str) -> Response:
    started = time.perf_counter()
    d, as_twin, refused = _open(request)
    if refused is not None:
        return refused
    state = await run_data(d, run_id)
    if state is None:
        return d.chrome.error(request, NotFoundError(f"no run with id {run_id!r}", "pick a run from the runs page"),
                              as_twin)
    data, version = state
    if as_twin:
        return d.chrome.twin(request, data, version=version, started=started)
    run, steps = data["run"], data["steps"]
    now = int(time.time() * 1000)
    # A bar per step on one time axis: from (end - duration) to end, as a share of the run's span.
    first = min([s.ended_at - s.duration_ms for s in steps] + [run.summary.started_at or run.summary.created_at])
    last = max([s.ended_at for s in steps] + [run.summary.ended_at or now])
    span = max(1, last - first)
    bars = {s.step_id: (100 * (s.ended_at - s.duration_ms - first) / span, max(0.5, 100 * s.duration_ms / span))
            for s in steps}
    final = run.summary.final
    return d.chrome.page(request, "run.html", {**data, "bars": bars, "final": final, "now": now,
                                              "app_run_url": await _app_run_url(d, run.summary)},
                         title=f"Run {run_id}", nav="runs",
                         poll=None if final else f"/runs/{run_id}.json",
                         live=None if final else _url(f"/runs/{run_id}/live", {"v": version}), version=version,
                         started=started)


async def run_data(d: Dashboard, run_id: str) -> tuple[dict[str, Any], str] | None:
    """A run page's data (its twin's) and version (its live stream's too); None if there is no such run."""
    run = await d.reader.get_run(run_id)
    if run is None:
        return None
    steps = await d.reader.run_steps(run_id)
    waits = await d.reader.run_waits(run_id)
    history = await d.reader.run_history(run_id)
    version = version_of(run.summary.status, run.summary.waiting, len(steps), len(history),
                         [(w.kind, w.reason) for w in waits], [*run.replays, *run.resumed_as], run.function_paused_at)
    return {"run": run, "steps": steps, "waits": waits, "history": history}, version


async def _app_run_url(d: Dashboard, run: RunSummary) -> str | None:
    """The agentcmd app's own page of this run (the agent's transcript), when the run's app is one.

    The app registered its SDK endpoint, ``<app>/api/workflows/inngest``; its
    run pages are ``<app>/runs/<run id>``. An app served elsewhere (any other
    SDK app) has no such page: no link.
    """
    url = await d.reader.app_url(run.app_id)
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.path.rstrip("/").endswith(APP_SERVE_PATH):
        return None
    base = parts.path.rstrip("/")[:-len(APP_SERVE_PATH)]
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/runs/{_quote(run.run_id)}", "", ""))


async def events_page(request: Request) -> Response:
    started = time.perf_counter()
    d, as_twin, refused = _open(request)
    if refused is not None:
        return refused
    q = request.query_params
    try:
        limit = parse_limit(q.get("limit"), d.page_size)
    except AgentcmdError as exc:
        return d.chrome.error(request, exc, as_twin)
    name = q.get("name") or None
    before = q.get("before") or None
    page = await d.reader.list_events(name, before, limit)
    data = {"events": page.items, "next_cursor": page.next_cursor, "filters": {"name": name, "before": before}}
    version = version_of([(e.event_id, e.run_count) for e in page.items])
    if as_twin:
        return d.chrome.twin(request, data, version=version, started=started)
    base = {"name": name} if name else {}
    return d.chrome.page(request, "events.html", {
        **data, "next_url": _url("/events", {**base, "before": page.next_cursor}) if page.next_cursor else None,
        "first_url": _url("/events", base) if before else None,
    }, title="Events", nav="events", poll=_url("/events.json", base) if not before else None,
        version=version, started=started)


async def event_page(request: Request, event_id: str) -> Response:
    d, as_twin, refused = _open(request)
    if refused is not None:
        return refused
    event = await d.reader.get_event(event_id)
    if event is None:
        return d.chrome.error(request, NotFoundError(f"no event with id {event_id!r}",
                                                     "pick an event from the events page"), as_twin)
    runs = await d.reader.event_runs(event_id)
    skips = await d.reader.event_skips(event_id)
    data = {"event": event, "runs": runs, "skips": skips}
    version = version_of([(r.run_id, r.status, r.waiting) for r in runs], len(skips))
    if as_twin:
        return d.chrome.twin(request, data, version=version)
    return d.chrome.page(request, "event.html", data, title=f"Event {event.name}", nav="events",
                         poll=f"/events/{event_id}.json", version=version)


async def apps_page(request: Request) -> Response:
    d, as_twin, refused = _open(request)
    if refused is not None:
        return refused
    apps = await d.reader.list_apps()
    workers = d.reader.connect_workers()   # connect workers, listed under their apps (engine/connect)
    known = {a.app_id for a in apps}
    data = {"apps": apps, "storage": await d.reader.storage(),
            "workers_by_app": {a.app_id: [w for w in workers if a.app_id in w.app_ids] for a in apps},
            "unsynced_workers": [w for w in workers if not known.intersection(w.app_ids)]}
    version = version_of([(a.app_id, a.synced_at, a.error, [(f.slug, f.paused_at) for f in a.functions])
                          for a in apps], [(w.connection_id, w.status, w.in_flight, w.last_heartbeat_ms)
                                           for w in workers])
    if as_twin:
        return d.chrome.twin(request, data, version=version)
    return d.chrome.page(request, "apps.html", data, title="Apps", nav="apps", poll="/apps.json", version=version)


async def function_page(request: Request, slug: str) -> Response:
    return await show_function(request, slug)


async def show_function(request: Request, slug: str, posted: replayform.ReplayForm | None = None,
                        error: AgentcmdError | None = None) -> Response:
    """A function's page; ``posted``/``error``: a replay post that was refused, shown on its form."""
    started = time.perf_counter()
    d, as_twin, refused = _open(request)
    if refused is not None:
        return refused
    detail = await d.reader.get_function(slug)
    if detail is None:
        return d.chrome.error(request, NotFoundError(f"no function {slug!r}", "pick a function from the apps page"),
                              as_twin)
    form = posted or replayform.from_values(request.query_params, int(time.time() * 1000))
    problem = error
    matching: int | None = None
    if problem is None and request.query_params.get("preview"):
        matching, problem = await _preview(d.reader, slug, form)
    replay = {**form.as_json(), "matching": matching,
              "error": (f"{problem.what} ({problem.fix})" if problem.fix else problem.what) if problem else None}
    data = {"function": detail.function, "flow": detail.flow, "waiting": detail.waiting, "skips": detail.skips,
            "runs": detail.runs, "replay": replay}
    version = function_version(detail)
    status_code = problem.http_status if problem is not None and error is not None else 200
    if as_twin:
        return d.chrome.twin(request, data, version=version, started=started, status_code=status_code)
    return d.chrome.page(request, "function.html", {**data, "form": form,
                                                    "status_choices": replayform.STATUS_CHOICES},
                         title=f"Function {detail.function.name}", nav="apps", version=version, started=started,
                         # After a refused post the address is the post's: a reload there would not be the page.
                         poll=None if posted else f"/functions/{_quote(slug)}.json",
                         live=None if posted else _url(f"/functions/{_quote(slug)}/live", {"v": version}),
                         status_code=status_code)


def function_version(detail: FunctionDetail) -> str:
    """A function page's version (its twin's and its live stream's)."""
    return version_of(detail.function.paused_at, [(w.key, w.calls) for w in detail.waiting],
                      [s.at for s in detail.skips[:1]], [(r.run_id, r.status, r.waiting) for r in detail.runs])


async def _preview(reader: DashboardReads, slug: str, form: replayform.ReplayForm
                   ) -> tuple[int | None, AgentcmdError | None]:
    """How many runs the Replay form's range matches, or why it cannot be replayed."""
    try:
        req = replayform.to_request(form)
        matching = await reader.replay_matches(slug, req)
    except AgentcmdError as exc:
        return None, exc
    return matching, replayform.nothing_to_replay(slug, req) if matching == 0 else None


def _quote(value: str) -> str:
    return quote(value, safe="/")


def _url(path: str, params: dict[str, Any]) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(clean)}" if clean else path


__all__ = ["Dashboard", "DashboardConfig", "as_json", "dashboard_of"]
