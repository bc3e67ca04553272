"""OpenTelemetry traces of runs, steps and SDK calls (docs/running.md "Traces"), with the optional ``otel`` extra.

Off unless configured the OpenTelemetry way: ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) names the collector, and the
SDK's own variables (``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``,
``OTEL_SDK_DISABLED`` ...) apply as usual. Spans go over OTLP/HTTP from a
background thread (``BatchSpanProcessor``): the engine's loop only queues
them. Without the extra installed nothing is imported and nothing changes;
with the endpoint set but the packages missing, the engine says what to
install (``pip install 'agentcmd[otel]'``) and runs without traces.

One trace per run, readable without the engine keeping anything in memory
across a run that may last days or outlive a restart:

* the trace id is the run id (a ULID is 128 bits, like a trace id), and the
  run span's id is derived from it, so every span of a run finds its
  parent from the run id alone;
* ``run <function>``: from the run's creation (the ULID's time) to its end,
  emitted when it ends, status and function as attributes;
* ``sdk call <function>``: each HTTP call to the app, child of the run span,
  with the attempt and the outcome;
* ``step <name>``: each step the call ran, child of its call.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("agentcmd.observe.tracing")

ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
INSTALL = "pip install 'agentcmd[otel]'"
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# The ids the next span must get (the run span: its trace id and span id are the run's); None = random.
_forced: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("agentcmd_span_ids", default=None)


def configured(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_ENVS)


def _ulid(run_id: str) -> int | None:
    value = run_id.strip().upper()
    if len(value) != 26 or any(c not in _ULID_ALPHABET for c in value):
        return None
    number = 0
    for c in value:
        number = number * 32 + _ULID_ALPHABET.index(c)
    return number if 0 < number < 1 << 128 else None


def run_trace_id(run_id: str) -> int:
    """The run's trace id: its ULID's 128 bits (any other id: 128 bits of its hash)."""
    return _ulid(run_id) or int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:16], "big") or 1


def run_span_id(run_id: str) -> int:
    return int.from_bytes(hashlib.sha256(b"run-span:" + run_id.encode()).digest()[:8], "big") or 1


def run_started_ns(run_id: str, fallback_ns: int) -> int:
    """When the run was created: the ULID's millisecond timestamp (the first 48 bits)."""
    number = _ulid(run_id)
    return (number >> 80) * 1_000_000 if number is not None else fallback_ns


def from_env(service_name: str) -> RunTracer | None:
    """A tracer exporting over OTLP/HTTP when an endpoint is configured and the extra is installed, else None."""
    if not configured():
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning("an OpenTelemetry endpoint is configured (%s) but the OpenTelemetry packages are not "
                    "installed (%s): no traces are exported; install them with: %s",
                    ", ".join(n for n in ENDPOINT_ENVS if os.environ.get(n)), exc.name or exc, INSTALL)
        return None
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = make_provider(resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return RunTracer(provider)


def make_provider(resource: Any = None) -> TracerProvider:
    """A ``TracerProvider`` whose ids a run span can choose (its trace id and span id are the run's)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class RunIds(RandomIdGenerator):
        def generate_span_id(self) -> int:
            forced = _forced.get()
            return forced[1] if forced is not None else super().generate_span_id()

        def generate_trace_id(self) -> int:
            forced = _forced.get()
            return forced[0] if forced is not None else super().generate_trace_id()

    return TracerProvider(resource=resource, id_generator=RunIds(), shutdown_on_exit=False)


class RunTracer:
    """Spans of runs, SDK calls and steps on ``provider`` (see the module docstring)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("agentcmd")

    def _run_context(self, run_id: str) -> Any:
        from opentelemetry import trace

        parent = trace.SpanContext(run_trace_id(run_id), run_span_id(run_id), is_remote=True,
                                   trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
        return trace.set_span_in_context(trace.NonRecordingSpan(parent))

    def sdk_call(self, run_id: str, function: str, attempt: int, step_id: str | None, outcome: str,
                 start_ns: int, end_ns: int, steps: Iterable[tuple[str, str, str]]) -> None:
        """One SDK call and the steps it ran (``(step id, name, status)``), as finished spans."""
        from opentelemetry import trace

        attrs: dict[str, Any] = {"agentcmd.run_id": run_id, "agentcmd.function": function, "agentcmd.attempt": attempt,
                 "agentcmd.status": outcome}
        if step_id:
            attrs["agentcmd.step_id"] = step_id
        call = self.tracer.start_span(f"sdk call {function}", context=self._run_context(run_id),
                                      kind=trace.SpanKind.CLIENT, attributes=attrs, start_time=start_ns)
        if outcome in ("function_error", "internal_error", "interrupted"):
            call.set_status(trace.Status(trace.StatusCode.ERROR, outcome))
        inside = trace.set_span_in_context(call)
        for sid, name, status in steps:
            step = self.tracer.start_span(f"step {name}", context=inside, start_time=start_ns, attributes={
                **attrs, "agentcmd.step_id": sid, "agentcmd.step_name": name, "agentcmd.status": status})
            if status != "completed":
                step.set_status(trace.Status(trace.StatusCode.ERROR, status))
            step.end(end_time=end_ns)
        call.end(end_time=end_ns)

    def run_finished(self, run_id: str, function: str, status: str) -> None:
        """The run span, from the run's creation to now."""
        from opentelemetry import trace

        now = time.time_ns()
        token = _forced.set((run_trace_id(run_id), run_span_id(run_id)))
        try:
            span = self.tracer.start_span(f"run {function}", context=trace.set_span_in_context(trace.INVALID_SPAN),
                                          start_time=min(run_started_ns(run_id, now), now),
                                          attributes={"agentcmd.run_id": run_id, "agentcmd.function": function,
                                                      "agentcmd.status": status.lower()})
        finally:
            _forced.reset(token)
        if status.lower() == "failed":
            span.set_status(trace.Status(trace.StatusCode.ERROR, "failed"))
        span.end(end_time=now)

    def shutdown(self) -> None:
        """Export what is queued (the engine stops)."""
        self.provider.shutdown()
