"""The engine's Prometheus metrics (``GET /metrics``, docs/running.md "Metrics").

One ``EngineMetrics`` per engine, each with its own ``CollectorRegistry``
(tests start several engines in one process; the global registry would mix
them). Counters and histograms move where the engine already records the
fact, each with a one-line hook:

* events accepted: ``Commands.accept_events`` / ``send_events``;
* runs started and finished: the store's run observer (``Database.set_run_observer``),
  called by ``create_runs_txn`` and ``finish_run_txn`` whatever ended the run
  (an SDK answer, a cancel, a timeout, an app that never came back);
* SDK calls and steps: ``Executor._call``, timed around the HTTP call. A step
  runs inside the SDK call that reports it, so its duration is that call's.

Gauges (queue depth per lane, runs waiting for their app, database size,
calls in flight) are read from the store when Prometheus scrapes
(``store/queries/gauges.py``), not kept in step with every write.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from agentcmd.engine.protocol import Opcode

if TYPE_CHECKING:
    from agentcmd.engine.protocol import SDKResponse
    from agentcmd.engine.store.models import CallContext
    from agentcmd.engine.store.queries.gauges import Gauges
    from agentcmd.observe.tracing import RunTracer

# Seconds: a step is anything from a 2 ms function to an hour-long coding agent.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_STEP_STATUS: dict[str, str] = {Opcode.STEP_RUN: "completed", Opcode.STEP: "completed", Opcode.STEP_ERROR: "errored",
                Opcode.STEP_FAILED: "failed"}


class EngineMetrics:
    """The engine's collectors; ``render()`` is the scrape body."""

    def __init__(self, tracer: RunTracer | None = None) -> None:
        self.tracer = tracer       # OpenTelemetry spans of the same facts, when configured (observe/tracing.py)
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.events_accepted = Counter("agentcmd_events_accepted", "Events accepted (POST /e and the dashboard)",
                                       registry=r)
        self.runs_started = Counter("agentcmd_runs_started", "Runs created, by function", ["function"], registry=r)
        self.runs_finished = Counter("agentcmd_runs_finished", "Runs that ended, by function and final status",
                                     ["function", "status"], registry=r)
        self.sdk_calls = Histogram("agentcmd_sdk_call_duration_seconds",
                                   "SDK calls (one HTTP request to the app), by function and outcome "
                                   "(done, ops, function_error, internal_error, interrupted)",
                                   ["function", "outcome"], buckets=DURATION_BUCKETS, registry=r)
        self.steps = Histogram("agentcmd_step_duration_seconds",
                               "Steps run by the SDK (the call that ran them), by function and status "
                               "(completed, errored = will retry, failed)",
                               ["function", "status"], buckets=DURATION_BUCKETS, registry=r)
        self.queue_depth = Gauge("agentcmd_queue_depth",
                                 "Queue items by lane (runs: work of existing runs; events: dispatch of new "
                                 "events) and state (ready = due now, scheduled = due later, leased = running)",
                                 ["lane", "state"], registry=r)
        self.waiting_for_app = Gauge("agentcmd_runs_waiting_for_app",
                                     "Runs whose app does not answer (docs/engine.md, interrupted calls)", registry=r)
        self.db_bytes = Gauge("agentcmd_database_size_bytes", "Size of the engine database (pages x page size)",
                              registry=r)
        self.db_free_bytes = Gauge("agentcmd_database_free_bytes", "Free pages in the engine database, in bytes",
                                   registry=r)
        self.in_flight = Gauge("agentcmd_queue_tasks_in_flight", "Queue tasks the worker is running now",
                               registry=r)

    def on_run(self, what: str, run_id: str, function: str, status: str | None) -> None:
        """The store's run observer: ``("started", id, slug, None)`` or ``("finished", id, slug, status)``."""
        if what == "started":
            self.runs_started.labels(function).inc()
            return
        self.runs_finished.labels(function, (status or "unknown").lower()).inc()
        if self.tracer is not None:
            self.tracer.run_finished(run_id, function, status or "unknown")

    def sdk_call(self, ctx: CallContext, resp: SDKResponse, started: float) -> None:
        """One SDK call answered (``started``: ``time.perf_counter()`` before it), and the steps it ran."""
        elapsed = time.perf_counter() - started
        function = ctx.function_slug
        self.sdk_calls.labels(function, resp.kind.value).observe(elapsed)
        steps = []
        for op in resp.ops:
            status = _STEP_STATUS.get(op.op)
            if status is not None:
                self.steps.labels(function, status).observe(elapsed)
                steps.append((op.id, op.label, status))
        if self.tracer is not None:
            end = time.time_ns()
            self.tracer.sdk_call(ctx.run_id, function, ctx.item.attempt, ctx.item.step_id, resp.kind.value,
                                 end - int(elapsed * 1e9), end, steps)

    def close(self) -> None:
        """The engine stops: export the spans still queued."""
        if self.tracer is not None:
            self.tracer.shutdown()

    def set_gauges(self, gauges: Gauges, in_flight: int) -> None:
        for (lane, state), count in gauges.queue.items():
            self.queue_depth.labels(lane, state).set(count)
        self.waiting_for_app.set(gauges.waiting_for_app)
        self.db_bytes.set(gauges.db_bytes)
        self.db_free_bytes.set(gauges.db_free_bytes)
        self.in_flight.set(in_flight)

    def render(self) -> bytes:
        return generate_latest(self.registry)
