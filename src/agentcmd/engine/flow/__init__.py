"""Flow control before a run exists: idempotency, singleton, rate limit, throttle, debounce, batching.

``decide_flow(fn, event)`` is pure (reads only the function config and the
event) and returns a ``FlowDecision``; its ``apply(conn, ...)`` runs inside
the dispatch transaction and returns the runs to create now. Debounce and
batch buffers are queue rows keyed by ``dedupe`` with a ``ready_at``
deadline, so they survive restarts like every other timer.

Rate limit counts admitted runs per key in ``flow_marks`` (migration 0002):
a rate-limited event is dropped (no run; recorded in ``flow_skips``,
migration 0003). A throttled run is created with a later first call
(``throttle.py``: GCRA, its state one ``flow_marks`` row per key). A
negative ``priority.run`` delays the first call the same way
(``priority.py``). Concurrency limits act on in-flight SDK calls, so they
are enforced where calls start (``concurrency.py``, from ``executor.py``).
Sync-time validation of every expression is in ``validate.py``; a paused
function (``pause.py``) starts no run for an event (recorded in ``flow_skips``).
The rows themselves are read and written by ``store/flow.py`` and
``store/queue.py``: this package decides, the store keeps.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agentcmd.engine import triggers
from agentcmd.engine.flow import priority
from agentcmd.engine.flow import singleton as singleton_runs
from agentcmd.engine.flow import throttle as throttling
from agentcmd.engine.protocol import parse_duration_ms
from agentcmd.engine.store import flow as flow_rows
from agentcmd.engine.store import queue
from agentcmd.engine.store.models import NewItem, QueueKind, RunSpec, RunStatus
from agentcmd.engine.store.runs import finish_run_txn

if TYPE_CHECKING:
    from agentcmd.engine.functions import Function


class RunSpecs(Protocol):
    """What a decision needs from the event dispatcher (``ingest.Dispatcher``): a run spec for a function."""

    def run_spec(self, fn: Function, events: list[dict[str, Any]], event_id: str,
                 idem_key: str | None = None) -> RunSpec: ...


def _key(expr: Any, body: dict[str, Any]) -> str:
    if not isinstance(expr, str) or not expr:
        return ""
    return triggers.evaluate_key(expr, {"event": body}) or ""


def _duration(raw: Any, default_ms: int) -> int:
    try:
        return parse_duration_ms(str(raw)) if raw else default_ms
    except ValueError:
        return default_ms


@dataclass(frozen=True)
class FlowDecision:
    kind: str                  # start | debounce | batch
    key: str = ""
    idem_key: str | None = None
    singleton: str | None = None   # skip | cancel
    singleton_key: str = ""        # "<slug>:<evaluated singleton.key>"
    period_ms: int = 0
    timeout_ms: int | None = None
    max_size: int = 0
    rate: tuple[str, int, int] | None = None           # key, limit, period ms
    throttle: tuple[str, int, int, int] | None = None  # key, limit, period ms, burst
    delay_ms: int = 0                                   # a negative priority factor holds the start back

    def apply(self, conn: sqlite3.Connection, dispatcher: RunSpecs, fn: Function, body: dict[str, Any],
              event_id: str, now: int) -> list[RunSpec]:
        if flow_rows.is_paused_txn(conn, fn.slug):
            flow_rows.record_skip_txn(conn, fn.slug, event_id, "paused", now)
            return []
        if self.kind == "debounce":
            self._debounce(conn, fn, body, event_id, now)
            return []
        if self.kind == "batch":
            return self._batch(conn, dispatcher, fn, body, event_id, now)
        start_at: int | None = None
        if self.rate is not None:
            key, limit, period = self.rate
            if flow_rows.count_marks_txn(conn, key, now - period) >= limit:
                flow_rows.record_skip_txn(conn, fn.slug, event_id, "rate_limit", now)
                return []
            flow_rows.add_mark_txn(conn, key, now)
        if self.throttle is not None:
            key, limit, period, burst = self.throttle
            start_at = throttling.slot_txn(conn, key, limit, period, burst, now)
        if self.singleton is not None:
            active = singleton_runs.active_txn(conn, self.singleton_key)
            if active and self.singleton == "skip":
                flow_rows.record_skip_txn(conn, fn.slug, event_id, "singleton", now)
                return []
            for run_id in active:
                finish_run_txn(conn, run_id, RunStatus.CANCELLED, None, "cancelled by singleton", now=now)
        if self.delay_ms > 0:
            start_at = max(start_at or now, now + self.delay_ms)
        spec = dispatcher.run_spec(fn, [body], event_id, self.idem_key)
        if self.singleton is not None:
            singleton_runs.register_txn(conn, self.singleton_key, spec.run_id)
        if start_at is not None and start_at > now:
            from dataclasses import replace
            spec = replace(spec, start_at=start_at)
        return [spec]

    def _debounce(self, conn: sqlite3.Connection, fn: Function, body: dict[str, Any], event_id: str,
                  now: int) -> None:
        """Move the key's debounce timer (the newest event wins), never past the first event + timeout."""
        dedupe = f"debounce:{fn.slug}:{self.key}"
        row = queue.keyed_item_txn(conn, dedupe)
        first = row[1].get("first_at", now) if row else now
        ready = now + self.period_ms
        if self.timeout_ms is not None:
            ready = min(ready, first + self.timeout_ms)
        queue.upsert_timer_txn(conn, NewItem(QueueKind.DEBOUNCE, None, ready, {
            "function": fn.slug, "events": [body], "event_id": event_id, "first_at": first}, dedupe=dedupe))

    def _batch(self, conn: sqlite3.Connection, dispatcher: RunSpecs, fn: Function, body: dict[str, Any],
               event_id: str, now: int) -> list[RunSpec]:
        """Add the event to the key's batch; a full batch starts its run now."""
        dedupe = f"batch:{fn.slug}:{self.key}"
        row = queue.keyed_item_txn(conn, dedupe)
        payload: dict[str, Any] = row[1] if row else {"function": fn.slug, "events": [], "event_id": event_id}
        payload["events"].append(body)
        if len(payload["events"]) >= self.max_size:
            if row:
                queue.ack_txn(conn, row[0])
            return [dispatcher.run_spec(fn, payload["events"], payload["event_id"])]
        if row:
            queue.set_payload_txn(conn, row[0], payload)
        else:
            queue.enqueue_txn(conn, None, NewItem(QueueKind.BATCH, None, now + (self.timeout_ms or 0), payload,
                                                  dedupe=dedupe))
        return []


RATE_MARKS_KEPT_MS = 7 * 24 * 3600 * 1000   # longer than any rate-limit period Inngest accepts (24 h)


def prune_marks_txn(conn: sqlite3.Connection, now: int) -> int:
    """Forget ``flow_marks`` rows that can no longer change a decision; returns rows deleted.

    Keys are often per user (``event.data.user_id``), so a key may never be
    seen again and its rows would stay forever. A throttle key's row (its
    ``tat``) in the past acts exactly like no row (``throttle.next_start``);
    rate-limit marks only count within their period. Called by the worker's
    periodic sweep.
    """
    return (flow_rows.prune_marks_txn(conn, "th:", now)
            + flow_rows.prune_marks_txn(conn, "rl:", now - RATE_MARKS_KEPT_MS))


def decide_flow(fn: Function, body: dict[str, Any], event_id: str, now: int) -> FlowDecision:
    cfg = fn.config
    if body.get("name") == "inngest/function.invoked":
        return FlowDecision("start")
    batch = cfg.get("batchEvents")
    if isinstance(batch, dict) and int(batch.get("maxSize") or 0) >= 2 and (
            not batch.get("if") or triggers.holds(batch.get("if"), {"event": body})):
        return FlowDecision("batch", key=_key(batch.get("key"), body), max_size=int(batch["maxSize"]),
                            timeout_ms=_duration(batch.get("timeout"), 10_000))
    debounce = cfg.get("debounce")
    if isinstance(debounce, dict) and debounce.get("period"):
        timeout = debounce.get("timeout")
        return FlowDecision("debounce", key=_key(debounce.get("key"), body),
                            period_ms=_duration(debounce.get("period"), 1000),
                            timeout_ms=_duration(timeout, 0) if timeout else None)
    idem_key = None
    if isinstance(cfg.get("idempotency"), str) and cfg["idempotency"]:
        idem_key = f"{fn.slug}:idem:{_key(cfg['idempotency'], body)}"
    elif isinstance(body.get("id"), str) and body.get("id") and body.get("id") != event_id:
        idem_key = f"{fn.slug}:event:{body['id']}"
    singleton = cfg.get("singleton")
    mode = singleton.get("mode") if isinstance(singleton, dict) else None
    rate = None
    rl = cfg.get("rateLimit")
    if isinstance(rl, dict) and int(rl.get("limit") or 0) > 0:
        rate = (f"rl:{fn.slug}:{_key(rl.get('key'), body)}", int(rl["limit"]), _duration(rl.get("period"), 60_000))
    throttle = None
    th = cfg.get("throttle")
    if isinstance(th, dict) and int(th.get("limit") or 0) > 0:
        throttle = (f"th:{fn.slug}:{_key(th.get('key'), body)}", int(th["limit"]),
                    _duration(th.get("period"), 60_000), int(th.get("burst") or 1))
    singleton_key = f"{fn.slug}:{_key(singleton.get('key'), body)}" if isinstance(singleton, dict) else ""
    return FlowDecision("start", idem_key=idem_key, singleton=str(mode) if mode else None,
                        singleton_key=singleton_key, rate=rate,
                        throttle=throttle, delay_ms=priority.delay_ms(cfg, body))
