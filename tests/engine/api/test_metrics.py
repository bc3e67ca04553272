"""``GET /metrics`` on a real engine: counters move with real runs, gauges are read at scrape, auth beyond loopback."""

from __future__ import annotations

from typing import Any

import httpx
import inngest
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.polling import wait_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value (the parser also proves the format is valid)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_metrics_after_real_runs(mode: str, engine_factory: Any, sdk_factory: Any, client_for: Any,
                                 send_event: Any, runs_for_event: Any, wait_for_run_status: Any) -> None:
    engine = engine_factory(mode)
    client = client_for(engine)

    @client.create_function(fn_id="two-steps", trigger=inngest.TriggerEvent(event="test/metrics"), retries=0)
    async def two(ctx: inngest.Context) -> int:
        a = await ctx.step.run("a", lambda: 1)
        if ctx.event.data.get("fail"):
            raise inngest.NonRetriableError("asked to fail")
        return a + await ctx.step.run("b", lambda: 2)

    sdk_factory(engine, client, [two])
    before = samples(engine.get("/metrics").text)
    done = [runs_for_event(engine, send_event(engine, "test/metrics", {"n": i}))[0] for i in range(3)]
    failed = runs_for_event(engine, send_event(engine, "test/metrics", {"fail": True}))[0]
    for run_id in done:
        wait_for_run_status(engine, run_id, "Completed")
    wait_for_run_status(engine, failed, "Failed")

    resp = engine.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=")
    after = samples(resp.text)
    slug = "test-app-two-steps"
    assert value(after, "agentcmd_events_accepted_total") - value(before, "agentcmd_events_accepted_total") == 4
    assert value(after, "agentcmd_runs_started_total", function=slug) == 4
    assert value(after, "agentcmd_runs_finished_total", function=slug, status="completed") == 3
    assert value(after, "agentcmd_runs_finished_total", function=slug, status="failed") == 1
    # 3 runs x (discovery + a + b + the end) and 1 x (discovery + a + the failing call): 16 calls, 7 steps
    calls = sum(v for (name, labels), v in after.items()
                if name == "agentcmd_sdk_call_duration_seconds_count" and ("function", slug) in labels)
    assert calls >= 10
    assert value(after, "agentcmd_step_duration_seconds_count", function=slug, status="completed") == 7
    assert value(after, "agentcmd_step_duration_seconds_sum", function=slug, status="completed") > 0
    for lane in ("runs", "events"):
        for state in ("ready", "scheduled", "leased"):
            assert ("agentcmd_queue_depth", (("lane", lane), ("state", state))) in after
    assert value(after, "agentcmd_runs_waiting_for_app") == 0
    assert value(after, "agentcmd_database_size_bytes") > 0


def test_runs_waiting_for_their_app_and_the_queue_are_gauges(engine_factory: Any, sdk_factory: Any,
                                                             client_for: Any, send_event: Any,
                                                             runs_for_event: Any) -> None:
    engine = engine_factory("dev")
    client = client_for(engine)

    @client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event="test/nap"))
    async def napper(ctx: inngest.Context) -> None:
        await ctx.step.sleep("nap", 3_600_000)

    app = sdk_factory(engine, client, [napper])
    [sleeping] = runs_for_event(engine, send_event(engine, "test/nap"))
    wait_for(lambda: value(samples(engine.get("/metrics").text), "agentcmd_queue_depth",
                           lane="runs", state="scheduled") >= 1, 10, "the sleep's wake-up in the queue")
    app.stop()      # the app is gone: the next run's first call gets no answer and waits for it
    [waiting] = runs_for_event(engine, send_event(engine, "test/nap"))
    wait_for(lambda: value(samples(engine.get("/metrics").text), "agentcmd_runs_waiting_for_app") == 1, 15,
             f"run {waiting} waiting for its app (the sleeping run {sleeping} is not)")


def test_metrics_beyond_loopback_need_the_bearer(engine_factory: Any) -> None:
    engine = engine_factory("production", args=("--host", "0.0.0.0"),
                            env={"AGENTCMD_DASHBOARD_TOKEN": "metrics-test-dashboard-token-0123456789"})
    refused = httpx.get(f"{engine.url}/metrics", timeout=5)
    assert refused.status_code == 401
    assert "bearer" in refused.json()["hint"].lower()
    assert httpx.get(f"{engine.url}/metrics", headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    ok = httpx.get(f"{engine.url}/metrics", headers=engine.headers, timeout=5)
    assert ok.status_code == 200 and "agentcmd_database_size_bytes" in ok.text


def test_metrics_on_a_loopback_production_engine_are_open(engine_factory: Any) -> None:
    engine = engine_factory("production")
    resp = httpx.get(f"{engine.url}/metrics", timeout=5)
    assert resp.status_code == 200 and "agentcmd_runs_waiting_for_app" in resp.text
