"""(4) Run one leased queue item: call the SDK, decide, commit, hand back what is next.

Boundary: triggers and flow control have finished before an item exists
(``ingest.py``); the worker decides *when* an item runs (``worker.py``).
This module only turns one item into one committed ``Outcome``:

    load memo -> driver.call -> decide() (pure) -> store.apply_outcome (one txn)

``decide`` maps an SDK answer onto the run (reference §6): memos for
finished steps, targeted calls for planned ones, sleeps and waits as queue
rows and pauses, retries with backoff, the run's end. The gating that needs
the run's current state (pending parallel steps, coalesced discovery) is in
``store.runs.apply_outcome_txn``, inside the same transaction.
Items the commit leases back to us (the next discovery, planned steps) are
returned so the worker runs them at once without another queue round trip.
Rows that come due without an SDK call (a sleep's end, a wait's timeout)
are fired by their handlers in ``kinds/``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from ulid import ULID

from agentcmd.engine import debug_triggers
from agentcmd.engine.backoff import Backoff
from agentcmd.engine.clock import Clock
from agentcmd.engine.driver import Driver
from agentcmd.engine.flow.concurrency import ConcurrencyGate
from agentcmd.engine.metrics import EngineMetrics
from agentcmd.engine.protocol import (
    Op,
    Opcode,
    ResponseKind,
    SDKResponse,
    error_memo,
    parse_duration_ms,
    sleep_until_ms,
    step_memo_data,
)
from agentcmd.engine.registry import Registry
from agentcmd.engine.store import Store, queue, runs, waits
from agentcmd.engine.store.models import (
    CallContext,
    MemoWrite,
    NewEvent,
    NewItem,
    NewPause,
    Outcome,
    QueueKind,
    RunStatus,
)
from agentcmd.observe import runlog

log = logging.getLogger("agentcmd.engine.executor")
YEAR_MS = 366 * 24 * 3600 * 1000
# How long a run may wait for an app that does not answer (docs/engine.md, interrupted calls); the setting
# app_wait_timeout, config.settings.ENGINE_APP_WAIT_TIMEOUT_DEFAULT_S is the same number.
DEFAULT_APP_WAIT_MS = 15 * 60 * 1000
ENGINE_STOPPING = "the engine is shutting down; the call runs again when it starts"
_STOPPED = SDKResponse(ResponseKind.INTERRUPTED, 0, message=ENGINE_STOPPING)   # what a cut call answers


@functools.lru_cache(maxsize=4096)
def _url_prefix(base: str, slug: str) -> str:
    from urllib.parse import urlencode, urlsplit, urlunsplit

    parts = urlsplit(base)
    query = [p for p in parts.query.split("&") if p and not p.startswith("stepId=")]
    if not any(p.startswith("fnId=") for p in query):
        query.append(urlencode({"fnId": slug}))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join([*query, "stepId="]), ""))


def call_url(base: str, slug: str, step_id: str) -> str:
    """The function's runtime URL with ``stepId`` set; the rest kept byte for byte (crazy ids survive)."""
    from urllib.parse import quote

    return _url_prefix(base, slug) + (step_id if step_id.isalnum() else quote(step_id, safe=""))


MAX_INLINE_STATE = 4 * 1024 * 1024 - 1024


def _quote(step_id: str) -> str:
    """JSON string for a step id; hashed ids are hex, so skip the encoder for them."""
    return f'"{step_id}"' if step_id.isalnum() and step_id.isascii() else json.dumps(step_id, ensure_ascii=False)


def request_body(ctx: CallContext) -> bytes:
    """The execution request (reference §5.1) as RFC 8785 canonical bytes.

    Memos and events are stored canonical, so the body is assembled from
    their stored text instead of re-encoding the whole run state per call
    (a 10-step run would otherwise re-encode 55 memos). Top-level keys are
    written in sorted order, as JCS requires.
    """
    stack = list(ctx.steps)
    steps = ",".join(_quote(sid) + ":" + ctx.steps[sid] for sid in sorted(ctx.steps))
    events = ctx.events_json
    use_api = False
    # Like the Go server: past ~4 MiB the SDK fetches the state itself
    # (GET /v0/runs/{id}/actions and /batch) instead of receiving it inline.
    if len(steps) > MAX_INLINE_STATE:
        steps, use_api = "", True
    if len(steps) + len(events) + len(ctx.event_json) > MAX_INLINE_STATE:
        events, use_api = "[]", True
    head = json.dumps({
        "run_id": ctx.run_id,
        "attempt": ctx.item.attempt,
        "max_attempts": ctx.max_attempts,
        "disable_immediate_execution": ctx.force_plan,
        "use_api": use_api,
        "stack": {"stack": stack, "current": len(stack)},
        "fn_id": ctx.function_slug,
        "step_id": ctx.item.step_id or "step",
        "env": "",
    }, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    flag = "true" if use_api else "false"
    return (f'{{"ctx":{head},"event":{ctx.event_json},"events":{events},"steps":{{{steps}}},'
            f'"use_api":{flag},"version":2}}').encode()


def _transport_error(resp: SDKResponse) -> str:
    if resp.kind == ResponseKind.INTERNAL_ERROR:
        return resp.message
    if not resp.retriable:
        return "NonRetriableError"
    return f"invalid status code: {resp.status}"


def _failed_output(resp: SDKResponse) -> str:
    """The Failed run's output: the SDK's error body unchanged, or ours for internal errors."""
    if resp.kind == ResponseKind.FUNCTION_ERROR and resp.error is not None:
        return resp.body
    return json.dumps({"name": "EngineError", "message": resp.message or f"HTTP {resp.status}",
                       "code": "sdk_call_failed"})


def decide(ctx: CallContext, resp: SDKResponse, now: int, backoff: Backoff, registry: Registry,
           gateway_results: dict[str, Any] | None = None) -> Outcome:
    """Pure: what one SDK answer does to the run (no I/O, no store)."""
    attempt = ctx.item.attempt
    last_attempt = attempt + 1 >= ctx.max_attempts
    out = Outcome()
    step = ctx.item.step_id
    if resp.kind == ResponseKind.DONE:
        out.finish = (RunStatus.COMPLETED, resp.body, None)
        return out
    if resp.kind != ResponseKind.OPS:
        if resp.retriable and not last_attempt:
            out.retry_at = backoff.next_at(now, attempt, resp.retry_at_ms)
            out.history.append(("attempt_failed", step, resp.message))
        else:
            out.finish = (RunStatus.FAILED, _failed_output(resp), _transport_error(resp))
        return out
    if len(resp.ops) > 1:
        out.force_plan = True
    for op in resp.ops:
        _decide_op(ctx, op, resp, out, now, backoff, registry, last_attempt, gateway_results or {})
        if out.retry_at is not None or out.finish is not None:
            break
    return out


def _decide_op(ctx: CallContext, op: Op, resp: SDKResponse, out: Outcome, now: int, backoff: Backoff,
               registry: Registry, last_attempt: bool, gateway_results: dict[str, Any]) -> None:
    attempt = ctx.item.attempt
    kind = op.op
    if kind in (Opcode.STEP_RUN, Opcode.STEP):
        out.memos.append(MemoWrite(op.id, op.label, kind, step_memo_data(op), attempt=attempt))
    elif kind == Opcode.STEP_ERROR:
        if resp.retriable and not last_attempt:
            out.retry_at = backoff.next_at(now, attempt, resp.retry_at_ms)
            out.history.append(("step_errored", op.id, str((op.error or {}).get("message", ""))))
        else:
            out.memos.append(MemoWrite(op.id, op.label, kind, error_memo(op.error), failed=True, attempt=attempt))
    elif kind == Opcode.STEP_FAILED:
        out.memos.append(MemoWrite(op.id, op.label, kind, error_memo(op.error), failed=True, attempt=attempt))
    elif kind == Opcode.STEP_PLANNED:
        race = bool(op.opts and op.opts.get("parallelMode") == "race")
        out.planned.append((op.id, race))
    elif kind == Opcode.SLEEP:
        out.waiting.append(op.id)
        out.items.append(NewItem(QueueKind.SLEEP, op.id, sleep_until_ms(op, now), {"name": op.label}))
    elif kind == Opcode.WAIT_FOR_EVENT:
        _wait_for_event(ctx, op, out, now)
    elif kind == Opcode.INVOKE_FUNCTION:
        _invoke(ctx, op, out, now, registry)
    elif kind in (Opcode.AI_GATEWAY, Opcode.GATEWAY):
        result = gateway_results.get(op.id, {"error": {"name": "AIGatewayError", "message": "no result"}})
        failed = isinstance(result, dict) and "error" in result
        out.memos.append(MemoWrite(op.id, op.label, kind, result, failed=failed, attempt=attempt))
    elif kind == Opcode.RUN_COMPLETE:
        out.finish = (RunStatus.COMPLETED, json.dumps(op.data), None)
    elif kind == Opcode.WAIT_FOR_SIGNAL:
        out.memos.append(MemoWrite(op.id, op.label, kind, error_memo(
            {"name": "UnsupportedOpError", "message": "WaitForSignal is not supported by this engine"}),
            failed=True, attempt=attempt))
    # StepNotFound, DiscoveryRequest and unknown ops: nothing to store; the run is re-discovered.


def _timeout_ms(raw: Any, default: int) -> int:
    if not isinstance(raw, str) or not raw.strip():
        return default
    try:
        return min(parse_duration_ms(raw), YEAR_MS)
    except ValueError:
        return default


def _wait_for_event(ctx: CallContext, op: Op, out: Outcome, now: int) -> None:
    opts = op.opts or {}
    event_name = str(opts.get("event") or op.name)
    expires = now + _timeout_ms(opts.get("timeout"), 0)
    trigger = ctx.first_event
    out.waiting.append(op.id)
    out.pauses.append(NewPause("wait", op.id, event_name, opts.get("if") or None, None, expires,
                               {"after_event": str(ULID()), "trigger": trigger, "name": op.label}))
    out.items.append(NewItem(QueueKind.WAIT_TIMEOUT, op.id, expires, {"name": op.label, "kind": "wait"}))


def _invoke(ctx: CallContext, op: Op, out: Outcome, now: int, registry: Registry) -> None:
    opts = op.opts or {}
    fn_id = str(opts.get("function_id") or "")
    payload = opts.get("payload") or {}
    data = dict(payload.get("data") or {}) if isinstance(payload, dict) else {}
    expires = now + _timeout_ms(opts.get("timeout"), YEAR_MS)
    target = registry.get(fn_id)
    if target is None:
        out.memos.append(MemoWrite(op.id, op.label, op.op, error_memo(
            {"name": "Error", "message": f"could not find function with ID: {fn_id}"}), failed=True,
            attempt=ctx.item.attempt))
        return
    correlation = f"{ctx.run_id}.{op.id}"
    data["_inngest"] = {"fn_id": fn_id, "correlation_id": correlation, "source_fn_id": ctx.function_slug,
                        "source_app_id": "", "source_fn_v": 1, "expire": expires, "name": op.label}
    internal = str(ULID())
    body: dict[str, Any] = {"name": "inngest/function.invoked", "data": data, "id": internal, "ts": now,
                            "user": {}}
    if isinstance(payload, dict) and payload.get("v"):
        body["v"] = payload["v"]
    out.waiting.append(op.id)
    out.events.append(NewEvent(internal, "inngest/function.invoked", body, None, now))
    out.pauses.append(NewPause("invoke", op.id, "inngest/function.finished", None, correlation, expires,
                               {"after_event": "", "name": op.label}))
    out.items.append(NewItem(QueueKind.WAIT_TIMEOUT, op.id, expires, {"name": op.label, "kind": "invoke"}))


def _canonical_header(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class Executor:
    """Runs items; see the module docstring."""

    def __init__(self, store: Store, registry: Registry, driver: Driver, backoff: Backoff, clock: Clock,
                 lease_ms: int, app_wait_ms: int = DEFAULT_APP_WAIT_MS, metrics: EngineMetrics | None = None) -> None:
        self.store = store
        self.metrics = metrics or EngineMetrics()
        self.app_wait_ms = app_wait_ms
        self.stopping = False
        self._calling: set[asyncio.Task[Any]] = set()   # tasks awaiting an SDK answer right now
        self.registry = registry
        self.driver = driver
        self.backoff = backoff
        self.clock = clock
        self.lease_ms = lease_ms
        self.calls = 0
        self.on_new_work: Callable[[], None] = lambda: None   # the worker's wake(); set by Worker
        self.limits = ConcurrencyGate(store, registry, clock, lambda: self.on_new_work())

    def _notify(self, outcome: Outcome) -> None:
        """Wake the worker when a commit queued work it must lease itself (future rows, events)."""
        if outcome.items or outcome.events or outcome.finish is not None or outcome.retry_at is not None:
            self.on_new_work()

    def lease_until(self) -> int:
        return self.clock() + self.lease_ms

    def interrupt_calls(self) -> int:
        """Engine shutdown: cut every SDK call in flight; each is recorded as interrupted (docs/engine.md).

        The tasks go on to commit that (same attempt, due at once), so the
        calls run again as soon as the engine starts; returns how many.
        """
        self.stopping = True
        for task in self._calling:
            task.cancel()
        return len(self._calling)

    async def call(self, ctx: CallContext) -> list[CallContext]:
        """One SDK call for a start/step item, committed before returning."""
        runlog.bind(ctx.run_id, ctx.item.step_id)     # run_id/step_id on every log line of this call
        if RunStatus(ctx.status).final:
            await self.store.write(lambda c: queue.ack_txn(c, ctx.item.id))
            return []
        slots = await self.limits.acquire(ctx)
        if slots is None:
            return []       # over a concurrency limit: parked in the queue until a slot frees
        try:
            return await self._call(ctx)
        finally:
            self.limits.release(slots)

    async def _call(self, ctx: CallContext) -> list[CallContext]:
        url = call_url(ctx.url, ctx.function_slug, ctx.item.step_id or "step")
        debug_triggers.hit("before_call")
        self.calls += 1
        called_at = self.clock()
        if ctx.status == RunStatus.QUEUED:
            self._mark_running(ctx.run_id, called_at)
        started = time.perf_counter()
        resp = await self._send(url, ctx)
        self.metrics.sdk_call(ctx, resp, started)
        debug_triggers.hit("after_call")
        if resp.kind == ResponseKind.INTERRUPTED:
            await self._interrupted(ctx, resp)
            return []
        if ctx.wait_since is not None:
            await self.store.write(lambda c: waits.clear_txn(c, ctx.run_id))
            log.info("run %s: the app answered again at %s", ctx.run_id, ctx.url.split("?")[0])
        gateway: dict[str, Any] = {}
        if resp.kind == ResponseKind.OPS:
            for op in resp.ops:
                if op.op in (Opcode.AI_GATEWAY, Opcode.GATEWAY):
                    gateway[op.id] = await self._gateway(op)
        outcome = decide(ctx, resp, self.clock(), self.backoff, self.registry, gateway)
        outcome.called_at = called_at
        if resp.kind != ResponseKind.OPS and resp.kind != ResponseKind.DONE:
            log.info("run %s %s: %s", ctx.run_id, "retrying" if outcome.retry_at else "failed", resp.message)
        nxt = await self.store.apply_outcome(ctx.run_id, ctx.item, outcome, self.lease_until())
        debug_triggers.hit("after_step_commit")
        self._notify(outcome)
        return nxt

    async def _send(self, url: str, ctx: CallContext) -> SDKResponse:
        """The SDK call; while the engine shuts down, an INTERRUPTED answer instead (``interrupt_calls``)."""
        task = asyncio.current_task()
        if self.stopping or task is None:
            return _STOPPED
        self._calling.add(task)
        try:
            return await self.driver.call(url, request_body(ctx), {
                "X-Run-ID": ctx.run_id, "X-Inngest-Step-ID": ctx.item.step_id or "step",
                "X-Inngest-Job-ID": f"{ctx.run_id}:{ctx.item.id}"})
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            task.uncancel()      # our own cut (interrupt_calls): record it, then end normally
            return _STOPPED
        finally:
            self._calling.discard(task)

    async def _interrupted(self, ctx: CallContext, resp: SDKResponse) -> None:
        """No answer (docs/engine.md): not an attempt. Wait for the app, or, at shutdown, run again at start."""
        now = self.clock()
        if resp is _STOPPED:
            await self.store.write(lambda c: waits.engine_interrupted_txn(c, ctx.item, resp.message, now))
            return
        app_url = ctx.url.split("?")[0]
        failed = await self.store.write(lambda c: waits.app_interrupted_txn(
            c, ctx.item, app_url, resp.message, now, self.app_wait_ms))
        if failed:
            log.warning("run %s failed: its app at %s did not answer for longer than app_wait_timeout (%g s): %s",
                        ctx.run_id, app_url, self.app_wait_ms / 1000, resp.message)
        elif ctx.wait_since is None:
            log.info("run %s waits for its app: %s", ctx.run_id, resp.message)
        self.on_new_work()       # the worker re-reads when the row is due (in RETRY_MS)

    def _mark_running(self, run_id: str, at: int) -> None:
        """Show a run as Running from its first call on, not from its first answer.

        A first step can be a coding agent that works for an hour: the run
        must not look queued meanwhile. The write is not awaited (it joins
        this loop turn's grouped commit) nor made durable by an fsync of its
        own: if it fails or a power cut loses it, the outcome's commit sets
        the same status and start time anyway.
        """
        fut = self.store.db.write(lambda c: runs.mark_running_txn(c, run_id, at), durable=False)
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _gateway(self, op: Op) -> Any:
        """``step.ai.infer``: the engine makes the provider request and memoizes its answer."""
        opts = dict(op.opts or {})
        # Go canonicalizes header names (x-api-key -> X-Api-Key); providers and mocks may rely on it.
        headers = {_canonical_header(str(k)): str(v) for k, v in (opts.get("headers") or {}).items()}
        key = opts.get("auth_key")
        if key:
            fmt = str(opts.get("format") or "")
            if fmt == "anthropic":
                headers.setdefault("X-Api-Key", str(key))
                headers.setdefault("Anthropic-Version", "2023-06-01")
            elif fmt == "gemini":
                headers.setdefault("X-Goog-Api-Key", str(key))
            else:
                headers.setdefault("Authorization", f"Bearer {key}")
        try:
            status, body = await self.driver.request_json("POST", str(opts.get("url")), headers, opts.get("body"))
        except Exception as exc:
            return {"error": {"name": "AIGatewayError", "message": str(exc) or type(exc).__name__}}
        if status >= 400:
            return {"error": {"name": "AIGatewayError", "message": f"HTTP {status}: {str(body)[:500]}"}}
        return {"data": body}
