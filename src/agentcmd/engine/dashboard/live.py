"""The dashboard's live streams: server-sent ``version`` messages instead of polling the JSON twins.

Each live page's ``#live`` region carries ``data-live``, the address of its
stream (``/runs/live?<the list's filters>``, ``/runs/{id}/live``,
``/functions/{slug}/live``); the browser's script keeps one ``EventSource``
on it and fetches the page again when a ``version`` message brings a
fingerprint it does not show. The fingerprint is exactly the JSON twin's
``version`` (the same ``views.*_data`` computes both). A run's stream sends
``end`` once the run is final; the lists never end by themselves.

Cost: a stream does not poll the store. It recomputes its version when the
engine's ``Changes`` notifier says a commit changed something (at most
every ``Changes.min_gap_s`` under load), and otherwise every
``FALLBACK_S`` in case a change was missed; readers of the same page share
one look per change (``SharedLooks``). A dashboard built on a bare
store (tests, no engine) has no notifier and looks every ``NO_NOTIFIER_S``.

Auth is the pages': a locked dashboard answers 401 without a login, and a
stream whose login ends (logout, expiry) stops at its next look. Streams
end when the engine shuts down (``Dashboard.closing``), after at most
``web.live.MAX_STREAM_S`` (the browser reconnects), and when the client goes.
``?v=<version>``: the version the page was rendered with; nothing is sent
until the page's data differs from it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable

from starlette.requests import Request
from starlette.responses import Response

from agentcmd.engine.dashboard.views import (
    Dashboard,
    dashboard_of,
    function_version,
    run_data,
    run_filter,
    runs_data,
)
from agentcmd.errors import AgentcmdError, NotFoundError
from agentcmd.web.live import SseMessage, sse_response, version_messages

FALLBACK_S = 10.0
"""With the engine's notifier: how often a stream looks anyway (a missed change shows within this)."""
NO_NOTIFIER_S = 1.0
"""Without one (a dashboard on a bare store): how often a stream looks."""

Compute = Callable[[], Awaitable[tuple[str, bool]]]


class _LoggedOut(Exception):
    """The stream's login ended: stop sending (the reconnect gets the 401)."""


def _refused(request: Request) -> tuple[Dashboard, Response | None]:
    d = dashboard_of(request)
    if d.chrome.auth.page_allowed(request):
        return d, None
    return d, d.chrome.twin(request, {"error": "log in to the dashboard first", "code": "unauthorized",
                                      "hint": "POST the dashboard token to /login, or open /login in a browser"},
                            status_code=401)


class SharedLooks:
    """The last version computed per page and notifier generation: twenty readers of one page cost one look.

    Readers of the same page wake on the same change; the first computes,
    the others find its answer for that generation (nothing committed
    since, so it is what they would compute).
    """

    MAX = 512

    def __init__(self) -> None:
        self._last: dict[Hashable, tuple[int, tuple[str, bool]]] = {}

    async def look(self, key: Hashable, generation: int, compute: Compute) -> tuple[str, bool]:
        cached = self._last.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        answer = await compute()
        if len(self._last) >= self.MAX:
            self._last.clear()
        self._last[key] = (generation, answer)
        return answer


_looks: dict[int, SharedLooks] = {}


def _shared(d: Dashboard) -> SharedLooks:
    return _looks.setdefault(id(d), SharedLooks())


def _stream(request: Request, d: Dashboard, key: Hashable, compute: Compute) -> Response:
    """The ``version``/``end`` stream of ``compute``, waiting on the engine's notifier between looks."""
    changes = d.changes
    auth = d.chrome.auth
    seen, at = [0], [0.0]     # the notifier's generation and the time of the last look

    async def guarded() -> tuple[str, bool]:
        if not auth.page_allowed(request):
            raise _LoggedOut
        if changes is None:
            return await compute()
        # Noted before computing: a change made while we compute is not missed.
        seen[0], at[0] = changes.generation, time.monotonic()
        return await _shared(d).look(key, seen[0], compute)

    async def changed() -> None:
        assert changes is not None
        await changes.wait(seen[0], at[0])

    async def messages() -> AsyncIterator[SseMessage]:
        source = version_messages(guarded, interval_s=FALLBACK_S if changes is not None else NO_NOTIFIER_S,
                                  changed=changed if changes is not None else None,
                                  known=request.query_params.get("v", ""))
        try:
            async for message in source:
                yield message
        except _LoggedOut:
            return

    return sse_response(messages(), closing=d.closing)


async def runs_live(request: Request) -> Response:
    """``GET /runs/live?status=&function=&since=&before=``: the runs list's versions (same filters as the page)."""
    d, refused = _refused(request)
    if refused is not None:
        return refused
    try:
        filt, since_raw, limit = run_filter(request, d.page_size)
    except AgentcmdError as exc:
        return d.chrome.error(request, exc, True)
    before = request.query_params.get("before") or None

    async def compute() -> tuple[str, bool]:
        _data, version, _page, _functions = await runs_data(d, filt, since_raw, limit, before)
        return version, False

    return _stream(request, d, ("runs", filt, since_raw, limit, before), compute)


async def run_live(request: Request, run_id: str) -> Response:
    """``GET /runs/{id}/live``: the run page's versions, then ``end`` once the run is final."""
    d, refused = _refused(request)
    if refused is not None:
        return refused
    if await d.reader.get_run(run_id) is None:
        return d.chrome.error(request, NotFoundError(f"no run with id {run_id!r}", "pick a run from the runs page"),
                              True)

    async def compute() -> tuple[str, bool]:
        state = await run_data(d, run_id)
        if state is None:            # gone (never, today: runs are not deleted): nothing more will change
            return "", True
        data, version = state
        return version, bool(data["run"].summary.final)

    return _stream(request, d, ("run", run_id), compute)


async def function_live(request: Request, slug: str) -> Response:
    """``GET /functions/{slug}/live``: a function page's versions."""
    d, refused = _refused(request)
    if refused is not None:
        return refused
    missing = NotFoundError(f"no function {slug!r}", "pick a function from the apps page")
    if await d.reader.get_function(slug) is None:
        return d.chrome.error(request, missing, True)

    async def compute() -> tuple[str, bool]:
        detail = await d.reader.get_function(slug)
        if detail is None:
            return "", True
        return function_version(detail), False

    return _stream(request, d, ("function", slug), compute)


ROUTES: tuple[tuple[str, Callable[..., Awaitable[Response]]], ...] = (
    ("/runs/live", runs_live),
    ("/runs/{run_id}/live", run_live),
    ("/functions/{slug}/live", function_live),
)
"""Each live stream's path; the router adds them before the pages (``/runs/{run_id}`` would take ``/runs/live``)."""
