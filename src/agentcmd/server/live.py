"""A run's kept stream and its live feed over HTTP: the app API's and the workflow views' routes.

    GET /api/runs/{id}/stream?after=SEQ&step=STEP_ID&limit=N   the kept events (JSON)
    GET /api/runs/{id}/live                                     server-sent events (resumable)
    GET /runs/{id}/stream.json, GET /runs/{id}/live             the same, under the views' login

The JSON answer is ``{"data": [event], "metadata": {"next_after", "dropped", "more"}}``:
events with seq > ``after`` (a ``dropped`` marker where a cap cut a step),
``next_after`` the last seq returned (ask again with it while ``more``).

The live feed (``text/event-stream``) sends

* ``event: agent`` / ``id: <seq>``: one stream event each, the kept ones
  after ``Last-Event-ID`` (or ``?after=``) first, then the live ones;
* ``event: run``: the run's status, phase, steps (with elapsed time) and
  usage, on connect and whenever they change;
* ``event: end`` ``{"status"}`` once the run is over, after its last events.

The run's state comes from one ``RunWatch`` per run and app, which asks
the engine about once a second while at least one reader listens, however
many readers there are. A stream ends by itself after five minutes (the
browser reconnects with ``Last-Event-ID``) and at once when the app server
shuts down (``agentcmd.web.live``), so a graceful stop never waits on a
browser. Who may read: ``/api/...`` the API's bearer rules, the views'
routes the views' login (``server/protect.py``); all the middlewares are
pure ASGI, so the stream passes unbuffered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from agentcmd.errors import AgentcmdError, InputError, NotFoundError
from agentcmd.safenames import is_plain_name
from agentcmd.server import api, shutdown
from agentcmd.server.runs import TERMINAL, run_version
from agentcmd.web.live import SseMessage, last_event_id, sse_response
from agentcmd.workflows import streamlog

POLL_SECONDS = 1.0
DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000

router = APIRouter()


def checked_run_id(run_id: str) -> str:
    """``run_id`` when it is one plain name (it becomes a directory), else a 400 saying so."""
    if not is_plain_name(run_id):
        err = InputError(f"{run_id[:80]!r} is not a run id", "use the id from 'agentcmd runs list' or the run page")
        err.http_status = 400
        raise err
    return run_id


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or not lo <= int(raw.strip()) <= hi:
        err = InputError(f"{name} must be a whole number from {lo} to {hi}, got {raw[:40]!r}",
                         f"e.g. ?{name}={default}")
        err.http_status = 400
        raise err
    return int(raw.strip())


def _data_dir(app: FastAPI) -> Path:
    data_dir: Path = app.state.runtime.data_dir
    return data_dir


async def _known_run(request: Request, run_id: str) -> None:
    """404 unless the engine knows the run or its stream exists here."""
    sdir = streamlog.stream_dir(_data_dir(request.app), run_id)
    if not await asyncio.to_thread(sdir.is_dir):
        await request.app.state.engine.get_run(run_id)


async def stream_json(request: Request, run_id: str) -> dict[str, Any]:
    run_id = checked_run_id(run_id)
    after = _int_param(request, "after", 0, 0, 2 ** 62)
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    step = request.query_params.get("step") or None
    await _known_run(request, run_id)
    log = streamlog.known_log(run_id)
    if log is not None:
        await log.flush()
    data_dir = _data_dir(request.app)
    events = await asyncio.to_thread(streamlog.read_events, data_dir, run_id, after=after, step_id=step,
                                     limit=limit + 1)
    more = len(events) > limit
    events = events[:limit]
    dropped = await asyncio.to_thread(streamlog.dropped_total, data_dir, run_id, step)
    return {"data": events, "metadata": {"next_after": int(events[-1]["seq"]) if events else after,
                                         "dropped": dropped, "more": more}}


# The run's state: one watcher per run, shared by its readers ------------------

def _app_request(app: FastAPI) -> Request:
    """A request that carries only the app: what the API's view helpers read."""
    return Request({"type": "http", "app": app, "method": "GET", "path": "/", "headers": [], "query_string": b""})


async def run_message(app: FastAPI, run_id: str) -> tuple[dict[str, Any], bool]:
    """The ``run`` message's data and whether the run is over."""
    run = await app.state.engine.get_run(run_id)
    view = await api._view(_app_request(app), run)
    steps = [{"step_id": s.get("step_id") or s.get("name"), "name": s.get("id"), "phase": s.get("phase"),
              "status": s.get("status"), "elapsed_ms": s.get("elapsed_ms"), "started_at": s.get("started_at"),
              "usage": s.get("usage")}
             for s in view["steps"]]
    version = run_version(view)  # the run page's
    data = {"run_id": run_id, "status": view["status"], "phase": view["phase"], "version": version,
            "steps": steps, "usage": view.get("usage")}
    return data, view["status"] in TERMINAL


class RunWatch:
    """Asks the engine about one run every ``POLL_SECONDS`` while anyone listens; readers wait on ``next``."""

    def __init__(self, app: FastAPI, run_id: str) -> None:
        self.app = app
        self.run_id = run_id
        self.listeners = 0
        self.generation = 0
        self.data: dict[str, Any] = {}
        self.final = False
        self._key: Any = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.polls = 0

    def _publish(self, data: dict[str, Any], final: bool) -> None:
        key = (data.get("version"), repr(data.get("usage")), data.get("phase"), final)
        if key == self._key:
            return
        self._key, self.data, self.final = key, data, final
        self.generation += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _poll(self) -> None:
        while True:
            self.polls += 1
            try:
                data, final = await run_message(self.app, self.run_id)
            except NotFoundError:
                data, final = {"run_id": self.run_id, "status": None, "phase": None, "version": "",
                               "steps": [], "usage": None}, True
            except AgentcmdError:
                data, final = {}, False   # the engine is away: look again
            if data:
                self._publish(data, final)
            if final:
                return
            await asyncio.sleep(POLL_SECONDS)

    def start(self) -> None:
        if self._task is None or (self._task.done() and not self.final):
            self._task = asyncio.get_running_loop().create_task(self._poll())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def next(self, seen: int) -> tuple[int, dict[str, Any], bool]:
        """The state once its generation is past ``seen``."""
        while self.generation <= seen:
            await self._changed.wait()
        return self.generation, self.data, self.final


def _watches(app: FastAPI) -> dict[str, RunWatch]:
    found: dict[str, RunWatch] | None = getattr(app.state, "run_watches", None)
    if found is None:
        found = app.state.run_watches = {}
    return found


@contextlib.contextmanager
def watching(app: FastAPI, run_id: str) -> Any:
    """The run's shared watcher, polling while at least one reader is inside."""
    watches = _watches(app)
    watch = watches.get(run_id)
    if watch is None:
        watch = watches[run_id] = RunWatch(app, run_id)
    watch.listeners += 1
    watch.start()
    try:
        yield watch
    finally:
        watch.listeners -= 1
        if watch.listeners <= 0:
            watch.stop()
            if watches.get(run_id) is watch:
                del watches[run_id]


async def live_messages(app: FastAPI, run_id: str, after: int) -> AsyncIterator[SseMessage | list[SseMessage]]:
    """Kept events after ``after``, live ones, ``run`` changes, and ``end`` after the last event."""
    def agent(event: dict[str, Any]) -> SseMessage:
        return SseMessage(event, event="agent", id=event["seq"])

    sub = streamlog.subscribe(run_id, data_dir=_data_dir(app), after=after)
    agent_task: asyncio.Future[list[dict[str, Any]]] | None = None
    run_task: asyncio.Future[tuple[int, dict[str, Any], bool]] | None = None
    try:
        with watching(app, run_id) as watch:
            seen = 0
            while True:
                if agent_task is None:
                    agent_task = asyncio.ensure_future(sub.next_batch())
                if run_task is None:
                    run_task = asyncio.ensure_future(watch.next(seen))
                done, _ = await asyncio.wait({agent_task, run_task}, return_when=asyncio.FIRST_COMPLETED)
                if agent_task in done:
                    batch = agent_task.result()
                    agent_task = None
                    yield [agent(event) for event in batch]   # one write for what is waiting
                if run_task in done:
                    seen, data, final = run_task.result()
                    run_task = None
                    yield SseMessage(data, event="run")
                    if final:
                        if agent_task is not None:
                            agent_task.cancel()
                            await asyncio.wait({agent_task})
                            if not agent_task.cancelled() and agent_task.exception() is None:
                                yield [agent(e) for e in agent_task.result()]   # taken just before the cancel
                            agent_task = None
                        yield [agent(event) for event in await sub.drain()]
                        yield SseMessage({"status": data.get("status")}, event="end")
                        return
    finally:
        for task in (agent_task, run_task):
            if task is not None:
                task.cancel()
        sub.close()


async def live(request: Request, run_id: str) -> Response:
    run_id = checked_run_id(run_id)
    after = last_event_id(request)
    await request.app.state.engine.get_run(run_id)   # 404 for a run the engine does not know
    return sse_response(live_messages(request.app, run_id, after), closing=lambda: shutdown.current.started)


for _path, _handler in (("/api/runs/{run_id}/stream", stream_json), ("/api/runs/{run_id}/live", live),
                        ("/runs/{run_id}/stream.json", stream_json), ("/runs/{run_id}/live", live)):
    router.add_api_route(_path, _handler, methods=["GET"], include_in_schema=False)
