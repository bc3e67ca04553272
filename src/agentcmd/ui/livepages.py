"""``GET /live``: the server-sent events that keep the workflow views' pages current.

A page's ``#live`` region carries ``data-live`` (this route, with what the
page shows) and ``data-version`` (the fingerprint it was rendered with).
The stream sends a ``version`` message when the fingerprint changes, the
same one the page's JSON twin carries, so the browser script fetches the
page again and swaps the region, and ``end`` once nothing will change:

- ``/live``                    the index page's recent runs (never ends by itself);
- ``/live?workflow=ID``        a workflow page's runs and the questions they wait for;
- ``/live?run=ID``             a run's status and steps; ends when the run has.

A run page itself listens to the run's own stream (``/runs/{id}/live``,
``server/live.py``): one connection for its transcript and its state, whose
``run`` events carry the same version, from one shared watcher per run.

It is a page route (``server/access.classify``): behind the views' login,
like the pages it serves. Streams end at app shutdown and after
``web.live.MAX_STREAM_S`` (the browser reconnects).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from agentcmd.errors import AgentcmdError, InputError
from agentcmd.server import api
from agentcmd.server import runs as server_runs
from agentcmd.server import shutdown as app_shutdown
from agentcmd.ui import present, runlists, transcript
from agentcmd.web.live import sse_response, version_messages
from agentcmd.web.site import site_of
from agentcmd.workflows import streamlog

INTERVAL_S = 1.0
"""How often a stream looks at what its page shows (the engine's REST API, as the page does)."""


run_version = server_runs.run_version   # the run page's fingerprint (server/runs.py)


_lists: dict[tuple[int, str | None], tuple[float, asyncio.Future[str]]] = {}
"""(app, workflow or None for the index) -> (when asked, the answer): one engine query a second per list."""


async def _list_version(request: Request, workflow_id: str | None) -> str:
    """The runs list's version, asked of the engine at most once per ``INTERVAL_S`` however many pages follow it."""
    key = (id(request.app), workflow_id)
    now = time.monotonic()
    hit = _lists.get(key)
    if hit is None or now - hit[0] >= INTERVAL_S * 0.9 or _failed(hit[1]):
        async def ask() -> str:
            if workflow_id is not None:   # the workflow page also shows the questions its runs wait for
                return await runlists.workflow_version(request, workflow_id)
            runs, _ = await runlists.recent_runs(request, None)
            return runlists.runs_version(runs)

        hit = (now, asyncio.ensure_future(ask()))
        _lists[key] = hit
    return await asyncio.shield(hit[1])


def _failed(answer: asyncio.Future[str]) -> bool:
    return answer.done() and (answer.cancelled() or answer.exception() is not None)


def _closing() -> bool:
    return app_shutdown.current.started


async def live_page(request: Request) -> Response:
    """The version stream of the page named by ``?run=`` or ``?workflow=`` (or the index)."""
    site = site_of(request)
    run_id = request.query_params.get("run")
    workflow_id = request.query_params.get("workflow")
    if run_id is not None and workflow_id is not None:
        return site.error(request, InputError("give ?run= or ?workflow=, not both",
                                              "use the data-live address the page carries"), True)
    if run_id is not None:
        try:
            await api.get_run(request, run_id)  # an unknown run is a 404 now, not a stream that never ends
        except AgentcmdError as exc:
            return site.error(request, exc, True)

        seen = [""]

        async def compute() -> tuple[str, bool]:
            try:
                view = (await api.get_run(request, run_id))["data"]
            except AgentcmdError:
                return seen[0], False  # the engine is away for a moment: no news, not an error
            seen[0] = run_version(view)
            return seen[0], view["status"] in present.TERMINAL
    else:
        if workflow_id is not None:
            try:
                await api.get_workflow(request, workflow_id)
            except AgentcmdError as exc:
                return site.error(request, exc, True)

        async def compute() -> tuple[str, bool]:
            return await _list_version(request, workflow_id), False

    return sse_response(version_messages(compute, interval_s=INTERVAL_S), closing=_closing)


async def transcript_of(data_dir: Path, run_id: str) -> dict[str, Any]:
    """What the run page shows of the run's kept stream on load: the latest entries and where to resume.

    ``after`` is the last seq read, so the page's live stream starts where
    the HTML ends (``/runs/{id}/live?after=``); ``earlier`` is true when older
    events exist than the ones shown.
    """
    def read() -> tuple[list[dict[str, Any]], int]:
        last = streamlog.last_seq(data_dir, run_id)
        start = max(0, last - transcript.MAX_ENTRIES)
        return streamlog.read_events(data_dir, run_id, after=start), start

    try:
        events, start = await asyncio.to_thread(read)
    except (OSError, ValueError) as exc:  # an unreadable stream must not take the run page with it
        return {"entries": [], "after": 0, "earlier": False, "error": f"the kept stream could not be read: {exc}"}
    after = max((int(e["seq"]) for e in events), default=start)
    return {"entries": transcript.entries(events), "after": after, "earlier": start > 0, "error": ""}
