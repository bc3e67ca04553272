"""Learning of run ends and waits inside the app server, whoever caused them.

A run can end without its workflow body knowing (cancelled from the engine
dashboard, a bulk cancel, a crash of the engine's own): so the watcher asks
the engine's REST API, every ``poll_seconds``, for the runs that ended
after a cursor (``GET /v1/runs?ended_after=...``), kept in
``<data dir>/notifications/cursor.json``. It asks again from
``OVERLAP_MS`` before the cursor (a run whose end was committed just after
a poll that already passed its time is not missed); the runs' delivery
entries make the repeat harmless. On its very first start the cursor is
"now": runs that ended before notifications were set up are not announced.

``waiting`` moments come from ``agentcmd.workflows.runevents`` (published
in this process by the approvals part when a question is first recorded);
the subscriber only hands the event to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agentcmd.errors import AgentcmdError
from agentcmd.server.engine import EngineRestClient
from agentcmd.server.notify import store
from agentcmd.server.notify.delivery import Deliveries, now_iso
from agentcmd.server.notify.targets import Notice
from agentcmd.server.runs import workflow_id_of
from agentcmd.workflows import runevents

log = logging.getLogger("agentcmd.notify")

OVERLAP_MS = 60_000
PAGE = 200
EVENT_OF_STATUS = {"Completed": "finished", "Failed": "failed", "Cancelled": "cancelled"}


def rfc3339(ms: int) -> str:
    """Epoch ms as the engine's REST API writes times (``2026-01-31T12:00:00.000Z``)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_rfc3339(value: Any) -> int | None:
    """The engine's RFC 3339 time as epoch ms; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


def _error_text(error: Any) -> str | None:
    if isinstance(error, str):
        with contextlib.suppress(ValueError):
            error = json.loads(error)
    if error in (None, ""):
        return None
    if isinstance(error, dict):
        text = error.get("message") or error.get("error") or error.get("name")
        return str(text) if text else None
    return str(error)


def notice_of_run(run: dict[str, Any], link: Callable[[str], str]) -> Notice | None:
    """The notice of an ended run of this app; None for another app's runs or a status that is no end."""
    event = EVENT_OF_STATUS.get(str(run.get("status")))
    workflow_id = workflow_id_of(run)
    run_id = str(run.get("run_id") or "")
    if event is None or workflow_id is None or not run_id:
        return None
    detail: dict[str, Any] = {}
    if event == "failed":
        # The engine keeps a failure's message in the run's output ({"name", "message", ...}), its class in error.
        output, error = run.get("output"), run.get("error")
        if isinstance(output, str):
            with contextlib.suppress(ValueError):
                output = json.loads(output)
        text: str | None
        if isinstance(output, dict) and output.get("message"):
            name = output.get("name")
            text = f"{name}: {output['message']}" if name else str(output["message"])
        else:
            text = _error_text(error)
        if text:
            detail["error"] = text[:500]
    return Notice(event, run_id, workflow_id, str(run.get("status")), link(run_id),
                  str(run.get("ended_at") or now_iso()), detail)


class Watcher:
    """Polls the engine for run ends and listens for run events; hands notices to ``Deliveries``."""

    def __init__(self, deliveries: Deliveries, engine: EngineRestClient, link: Callable[[str], str],
                 poll_seconds: float) -> None:
        self.deliveries = deliveries
        self.engine = engine
        self.link = link
        self.poll_seconds = poll_seconds
        self.seen: dict[str, int] = {}   # run id -> ended_at (ms), within the overlap
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine_trouble = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = runevents.subscribe(self._on_event)
        self.deliveries._spawn(self._watch())

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # Run events (waiting, and ends a workflow publishes itself) --------------------

    def _on_event(self, event: runevents.RunEvent) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        status = "Running" if event.kind == "waiting" else \
            {"finished": "Completed", "failed": "Failed", "cancelled": "Cancelled"}.get(event.kind)
        notice = Notice(event.kind, event.run_id, event.workflow_id, status, self.link(event.run_id), now_iso(),
                        dict(event.detail or {}))
        loop.call_soon_threadsafe(self.deliveries.offer, notice)

    # Run ends, from the engine ------------------------------------------------------

    async def _watch(self) -> None:
        data_dir = self.deliveries.data_dir
        cursor = await asyncio.to_thread(store.read_cursor, data_dir)
        if cursor is None:
            cursor = int(time.time() * 1000)
            await asyncio.to_thread(store.write_cursor, data_dir, cursor)
        while True:
            try:
                cursor = await self._poll(cursor)
                if self._engine_trouble:
                    log.info("notifications: the engine answers again")
                self._engine_trouble = False
            except AgentcmdError as exc:
                if not self._engine_trouble:
                    log.warning("notifications cannot watch run ends for now: %s", exc.what)
                self._engine_trouble = True
            await asyncio.sleep(self.poll_seconds)

    async def _ended_since(self, after_ms: int) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page, cursor = await self.engine.list_runs(limit=PAGE, cursor=cursor, ended_after=rfc3339(after_ms))
            runs += page
            if not cursor:
                return runs

    async def _poll(self, cursor: int) -> int:
        after = max(0, cursor - OVERLAP_MS)
        runs = await self._ended_since(after)
        # Checked here too: an engine that ignores ended_after must not make old runs look new.
        ended = sorted(((at, r) for r in runs if (at := parse_rfc3339(r.get("ended_at")) or 0) > after),
                       key=lambda pair: pair[0])
        for ended_at, run in ended:
            run_id = str(run.get("run_id") or "")
            if not run_id or run_id in self.seen:
                continue
            notice = notice_of_run(run, self.link)
            self.seen[run_id] = ended_at
            if notice is not None:
                self.deliveries.offer(notice)
        newest = max([cursor, *(at for at, _ in ended)])
        if newest != cursor:
            await asyncio.to_thread(store.write_cursor, self.deliveries.data_dir, newest)
        floor = newest - OVERLAP_MS
        self.seen = {k: v for k, v in self.seen.items() if v >= floor}
        return newest
