"""OpenTelemetry spans of runs, SDK calls and steps: in-memory export in process, OTLP/HTTP from a real engine."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import inngest
import pytest
import uvicorn
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.harness.engine import EngineProc, client_for, runs_for_event, send_event, wait_for_run_status
from tests.polling import wait_for

from agentcmd.engine.app import Engine, EngineConfig, build_app
from agentcmd.engine.serve import bind
from agentcmd.observe import tracing


class TracedEngine:
    """A dev engine in this process whose spans go to an ``InMemorySpanExporter``."""

    def __init__(self) -> None:
        self.engine = Engine(EngineConfig(mode="dev", retry_interval_s=0.1, grace_s=1))
        self.engine.open()
        self.exporter = InMemorySpanExporter()
        provider = tracing.make_provider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.engine.metrics.tracer = tracing.RunTracer(provider)
        self.sock = bind("127.0.0.1", 0)
        self.server = uvicorn.Server(uvicorn.Config(build_app(self.engine), log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])),
                                       daemon=True)
        self.thread.start()
        self.proc = EngineProc("dev", self.sock.getsockname()[1], [], {}, None)  # type: ignore[arg-type]
        wait_for(lambda: httpx.get(self.proc.url + "/health", timeout=1).status_code == 200, 15, "the engine")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture
def traced() -> Iterator[TracedEngine]:
    running = TracedEngine()
    yield running
    running.stop()


def test_a_run_its_calls_and_its_steps_are_spans_of_one_trace(traced: TracedEngine, sdk_factory: Any) -> None:
    engine = traced.proc
    client = client_for(engine)
    tries = {"flaky": 0}

    @client.create_function(fn_id="traced", trigger=inngest.TriggerEvent(event="test/traced"), retries=2)
    async def fn(ctx: inngest.Context) -> str:
        def flaky() -> str:
            tries["flaky"] += 1
            if tries["flaky"] == 1:
                raise RuntimeError("first try fails")
            return "ok"

        await ctx.step.run("first", lambda: 1)
        return await ctx.step.run("flaky", flaky)

    sdk_factory(engine, client, [fn])
    [run_id] = runs_for_event(engine, send_event(engine, "test/traced"))
    wait_for_run_status(engine, run_id, "Completed")
    slug = "test-app-traced"
    spans = wait_for(lambda: (s := traced.exporter.get_finished_spans()) and
                     any(x.name == f"run {slug}" for x in s) and s, 10, "the run span")
    [run] = [s for s in spans if s.name == f"run {slug}"]
    assert run.parent is None
    assert run.context.trace_id == tracing.run_trace_id(run_id) and run.context.span_id == tracing.run_span_id(run_id)
    assert run.attributes is not None and dict(run.attributes) == {
        "agentcmd.run_id": run_id, "agentcmd.function": slug, "agentcmd.status": "completed"}
    calls = [s for s in spans if s.name == f"sdk call {slug}"]
    assert len(calls) >= 4     # discovery, first, flaky (fails), flaky (retried), the end
    for call in calls:
        assert call.context.trace_id == run.context.trace_id
        assert call.parent is not None and call.parent.span_id == run.context.span_id
        assert call.attributes is not None and call.attributes["agentcmd.run_id"] == run_id
        assert call.start_time is not None and run.start_time is not None and call.start_time >= run.start_time
    steps = [s for s in spans if s.name.startswith("step ")]
    by_name: dict[str, list[Any]] = {}
    for s in steps:
        by_name.setdefault(s.name, []).append(s)
        parent = next(c for c in calls if s.parent is not None and c.context.span_id == s.parent.span_id)
        assert parent.attributes is not None and s.attributes is not None
        assert s.attributes["agentcmd.attempt"] == parent.attributes["agentcmd.attempt"]
    assert [s.attributes["agentcmd.status"] for s in by_name["step first"]] == ["completed"]  # type: ignore[index]
    flaky = sorted(by_name["step flaky"], key=lambda s: s.start_time)
    assert [(s.attributes["agentcmd.status"], s.attributes["agentcmd.attempt"]) for s in flaky] == [
        ("errored", 0), ("completed", 1)]


def test_without_an_endpoint_there_is_no_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_ENVS:
        monkeypatch.delenv(name, raising=False)
    assert tracing.from_env("x") is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.from_env("x") is None


def test_an_endpoint_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with caplog.at_level(logging.WARNING, "agentcmd.observe.tracing"):
        assert tracing.from_env("x") is None
    assert "pip install 'agentcmd[otel]'" in caplog.text and "OTEL_EXPORTER_OTLP_ENDPOINT" in caplog.text


class Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, int]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.received.append((self.path, self.headers.get("content-type", ""), len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_real_engine_exports_over_otlp_http(engine_factory: Any, sdk_factory: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        engine = engine_factory("dev", env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"})
        client = client_for(engine)

        @client.create_function(fn_id="exported", trigger=inngest.TriggerEvent(event="test/exported"))
        async def fn(ctx: inngest.Context) -> int:
            return await ctx.step.run("one", lambda: 1)

        sdk_factory(engine, client, [fn])
        [run_id] = runs_for_event(engine, send_event(engine, "test/exported"))
        wait_for_run_status(engine, run_id, "Completed")
        wait_for(lambda: any(p == "/v1/traces" and n > 0 for p, _, n in Collector.received), 15,
                 "spans posted to the collector", engine.output)
        assert all(ct == "application/x-protobuf" for p, ct, _ in Collector.received if p == "/v1/traces")
    finally:
        server.shutdown()
        server.server_close()
