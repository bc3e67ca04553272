"""(1) Events in: validate and store (``accept``), then match them (``dispatch``).

``accept`` runs in the request: it validates, assigns ULIDs, and stores the
events together with one ``event`` queue row each, in one commit, so an
event acknowledged with 200 is never lost. Dispatching a row matches
function triggers (name + CEL), applies flow control (``flow/``), resolves
the pauses the event satisfies (wait_for_event, invoke results, cancel_on)
and creates runs (``plan`` then ``apply_txn``). It happens in the accepting
commit itself when the worker has room (``dispatch_accepted_txn``: one flush
for the event and its runs' first calls), else later on the worker in a
commit of its own (``dispatch``).

An event that matches nothing while a configured (``-u``) app has not
completed its first sync is not dropped: its row goes back to the queue for
``HOLD_RETRY_MS`` and is matched once the sync lands (``Syncer.holding``).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ulid import ULID

from agentcmd.engine import triggers
from agentcmd.engine.appsync import HOLD_RETRY_MS
from agentcmd.engine.clock import Clock
from agentcmd.engine.flow import FlowDecision, decide_flow
from agentcmd.engine.functions import Function
from agentcmd.engine.registry import Registry
from agentcmd.engine.store import Store, load_contexts, queries, queue, runs
from agentcmd.engine.store.models import (
    CallContext,
    MemoWrite,
    NewEvent,
    NewPause,
    Outcome,
    QueueItem,
    RunSpec,
    RunStatus,
)
from agentcmd.errors import InputError

log = logging.getLogger("agentcmd.engine.ingest")
MAX_EVENTS_PER_REQUEST = 5000
_TS_MIN = 315_532_800_000       # 1980-01-01
_TS_MAX = 4_102_444_800_000     # 2100-01-01
YEAR_MS = 366 * 24 * 3600 * 1000


def seeded_ids(seed: str | None, count: int) -> list[str] | None:
    """Internal ids from ``x-inngest-event-id-seed`` so a client retry yields the same ids."""
    if not seed:
        return None
    try:
        millis_s, _, entropy_b64 = seed.partition(",")
        millis = int(millis_s)
        entropy = base64.b64decode(entropy_b64, validate=True)
    except (ValueError, TypeError):
        return None
    if millis <= 0 or len(entropy) != 10:
        return None
    out = []
    base = int.from_bytes(entropy[6:10], "big")
    for i in range(1, count + 1):
        ent = entropy[:6] + ((base + i) % 2**32).to_bytes(4, "big")
        out.append(str(ULID.from_bytes(millis.to_bytes(6, "big") + ent)))
    return out


def parse_events(payload: Any, now: int, seed: str | None = None, allow_internal: bool = False) -> list[NewEvent]:
    """Validate one event or a list; raise InputError naming the bad event."""
    items = payload if isinstance(payload, list) else [payload]
    if len(items) > MAX_EVENTS_PER_REQUEST:
        raise InputError(f"{len(items)} events in one request; the limit is {MAX_EVENTS_PER_REQUEST}",
                         "send them in smaller batches")
    ids = seeded_ids(seed, len(items)) or [str(ULID()) for _ in items]
    out: list[NewEvent] = []
    for i, (raw, internal_id) in enumerate(zip(items, ids, strict=True)):
        if not isinstance(raw, dict):
            raise InputError(f"event {i} is not a JSON object", "send {\"name\": ..., \"data\": {...}}")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"event {i}: event name is empty", "give every event a 'name'")
        if name.startswith("inngest/") and not allow_internal:
            raise InputError(f"event {i}: names starting with 'inngest/' are reserved", "rename the event")
        data = raw.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError(f"event {i} ({name}): 'data' must be an object", "wrap the value in an object")
        if not allow_internal:
            data = {k: v for k, v in data.items() if k != "_inngest"}
        ts = raw.get("ts") or now
        if not isinstance(ts, int) or isinstance(ts, bool):
            if isinstance(ts, float) and ts.is_integer():
                ts = int(ts)
            else:
                raise InputError(f"event {i} ({name}): 'ts' must be integer milliseconds", "fix 'ts'")
        if not _TS_MIN <= ts < _TS_MAX:
            raise InputError(f"event {i} ({name}): 'ts' {ts} is outside 1980..2100 (milliseconds)", "fix 'ts'")
        user_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else None
        body: dict[str, Any] = {"name": name, "data": data, "id": user_id or internal_id, "ts": ts,
                                "user": raw.get("user") if isinstance(raw.get("user"), dict) else {}}
        if isinstance(raw.get("v"), str):
            body["v"] = raw["v"]
        out.append(NewEvent(internal_id, name, body, user_id, ts))
    return out


class Dispatcher:
    """Matches stored events to functions and pauses; see the module docstring."""

    def __init__(self, store: Store, registry: Registry, clock: Clock, lease_ms: int) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.lease_ms = lease_ms
        self.holding: Callable[[], bool] | None = None  # Syncer.holding, wired by the engine

    def matching_functions(self, body: dict[str, Any]) -> list[Function]:
        name = str(body.get("name"))
        if name == "inngest/function.invoked":
            fn_id = ((body.get("data") or {}).get("_inngest") or {}).get("fn_id")
            fn = self.registry.get(str(fn_id)) if fn_id else None
            return [fn] if fn else []
        out = []
        for fn in self.registry.candidates(name):
            for pattern, expression in fn.event_triggers:
                if triggers.name_matches(pattern, name) and triggers.holds(expression, {"event": body}):
                    out.append(fn)
                    break
        return out

    def run_spec(self, fn: Function, events: list[dict[str, Any]], event_id: str,
                 idem_key: str | None = None) -> RunSpec:
        body = events[0]
        now = self.clock()
        parent = None
        if body.get("name") == "inngest/function.invoked":
            parent = ((body.get("data") or {}).get("_inngest") or {}).get("correlation_id")
        pauses = []
        for c in fn.config.get("cancel") or []:
            if not isinstance(c, dict) or not c.get("event"):
                continue
            timeout = YEAR_MS
            if isinstance(c.get("timeout"), str):
                from agentcmd.engine.protocol import parse_duration_ms
                with contextlib.suppress(ValueError):
                    timeout = parse_duration_ms(c["timeout"])
            pauses.append(NewPause("cancel", None, str(c["event"]), c.get("if") or None, None, now + timeout,
                                   {"after_event": event_id, "trigger": body}))
        raw_timeouts = fn.config.get("timeouts")
        timeouts: dict[str, Any] = raw_timeouts if isinstance(raw_timeouts, dict) else {}
        return RunSpec(run_id=str(ULID()), function_slug=fn.slug, app_id=fn.app_id, events=events,
                       event_id=event_id, max_attempts=fn.max_attempts, parent=parent, idem_key=idem_key,
                       cancel_pauses=tuple(pauses), start_timeout_ms=_optional_ms(timeouts.get("start")),
                       finish_timeout_ms=_optional_ms(timeouts.get("finish")))

    def plan(self, conn: sqlite3.Connection, body: dict[str, Any], event_id: str, now: int) -> Plan | None:
        """What the event starts and resolves; None while it must wait for an app's first sync."""
        name = str(body.get("name"))
        functions = self.matching_functions(body)
        decisions = [(fn, decide_flow(fn, body, event_id, now)) for fn in functions]
        correlation = None
        if name == "inngest/function.finished":
            correlation = (body.get("data") or {}).get("correlation_id")
        resolutions: list[tuple[dict[str, Any], Any]] = []
        for p in queries.pauses_for_event(conn, name, event_id, correlation):
            if p["expires_at"] < now and p["kind"] != "invoke":
                continue
            if p["kind"] == "invoke":
                resolutions.append((p, _invoke_result(body)))
            elif triggers.holds(p["expression"], {"event": p["payload"].get("trigger") or {}, "async": body}):
                resolutions.append((p, body))
        if not functions and not resolutions and not name.startswith("inngest/") \
                and self.holding is not None and self.holding():
            return None
        return Plan(name, event_id, body, decisions, resolutions)

    def apply_txn(self, conn: sqlite3.Connection, item: QueueItem, plan: Plan, now: int) -> list[QueueItem]:
        """Resolve the pauses, start the runs and ack the event's row, in the caller's transaction."""
        lease = now + self.lease_ms
        leased: list[QueueItem] = []
        for p, value in plan.resolutions:
            claimed = runs.claim_pause_txn(conn, int(p["id"]))
            if claimed is None:
                continue
            run_id, step_id, kind, payload = claimed
            if kind == "cancel":
                runs.finish_run_txn(conn, run_id, RunStatus.CANCELLED, None, f"cancelled by event {plan.name}",
                                    now=now)
                continue
            failed = isinstance(value, dict) and "error" in value and kind == "invoke"
            op = "InvokeFunction" if kind == "invoke" else "WaitForEvent"
            outcome = Outcome(memos=[MemoWrite(str(step_id), str(payload.get("name") or step_id), op, value,
                                               failed=failed)])
            leased += runs.apply_outcome_txn(conn, run_id, None, outcome, now, lease)
        specs: list[RunSpec] = []
        for fn, decision in plan.decisions:
            specs += decision.apply(conn, self, fn, plan.body, plan.event_id, now)
        leased += runs.create_runs_txn(conn, specs, now, lease)
        queue.ack_txn(conn, item.id)
        return leased

    async def dispatch(self, item: QueueItem) -> list[CallContext]:
        """Process one ``event`` queue row; returns first calls leased to the caller."""
        event_id = str(item.payload.get("event_id"))
        body = await self.store.read(lambda c: queries.event_body(c, event_id))
        if body is None:
            await self.store.write(lambda c: queue.ack_txn(c, item.id))
            return []
        now = self.clock()
        plan = await self.store.read(lambda c: self.plan(c, body, event_id, now))
        if plan is None:
            retry_at = now + HOLD_RETRY_MS
            await self.store.write(lambda c: queue.defer_txn(c, item.id, retry_at))
            return []
        return await self.store.write(lambda c: load_contexts(c, self.apply_txn(c, item, plan, now)))

    def dispatch_accepted_txn(self, conn: sqlite3.Connection, items: list[QueueItem],
                              bodies: dict[str, dict[str, Any]]) -> tuple[list[CallContext], list[QueueItem]]:
        """Dispatch events in the commit that accepts them (``Store.accept_events``).

        Their runs then exist, leased for their first call, when ``POST /e``
        answers, and the first call waits for no second flush. Returns those
        calls and the rows left to the worker (an event held for a sync).
        """
        now = self.clock()
        leased: list[QueueItem] = []
        rest: list[QueueItem] = []
        for item in items:
            event_id = str(item.payload.get("event_id"))
            body = bodies.get(event_id)
            plan = self.plan(conn, body, event_id, now) if body is not None else None
            if plan is None:
                rest.append(item)
                continue
            leased += self.apply_txn(conn, item, plan, now)
        return load_contexts(conn, leased), rest


@dataclass(frozen=True)
class Plan:
    """What one event does, decided before its transaction: runs to start (after flow control), pauses to resolve."""

    name: str
    event_id: str
    body: dict[str, Any]
    decisions: list[tuple[Function, FlowDecision]]
    resolutions: list[tuple[dict[str, Any], Any]]


def _optional_ms(raw: Any) -> int | None:
    from agentcmd.engine.protocol import parse_duration_ms

    if not isinstance(raw, str) or not raw:
        return None
    try:
        return parse_duration_ms(raw)
    except ValueError:
        return None


def _invoke_result(finished: dict[str, Any]) -> Any:
    data = finished.get("data") or {}
    if "error" in data and data.get("error") is not None:
        err = dict(data["error"]) if isinstance(data["error"], dict) else {"message": str(data["error"])}
        err.setdefault("name", "Error")
        err.setdefault("message", "invoked function failed")
        return {"error": err}
    return {"data": data.get("result")}
