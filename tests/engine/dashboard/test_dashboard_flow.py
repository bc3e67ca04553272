"""The engine dashboard's Replay button and flow-control state, on a real engine driving the real SDK.

A replay started from a function's page (preview, then the confirm form with
its CSRF token) creates new runs that say which run they replay, on the run
pages, the runs list and ``GET /v1/runs/{id}``. Runs parked on a
concurrency key, a paused function and events skipped by a pause or a rate
limit are visible on the pages and their JSON twins.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import inngest
import pytest
from tests.harness.engine import sdk_stack
from tests.polling import wait_for

State = dict[str, Any]
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def _functions(client: Any, state: State) -> list[Any]:
    @client.create_function(fn_id="replayable", trigger=inngest.TriggerEvent(event="dash/go"), retries=0)
    async def replayable(ctx: inngest.Context) -> Any:
        tag = ctx.event.data.get("tag", "")

        async def step() -> str:
            state["log"].add(f"ran-{tag}")
            if ctx.event.data.get("fail"):
                raise inngest.NonRetriableError(f"asked to fail ({tag})")
            return "ok"

        return await ctx.step.run("a", step)

    @client.create_function(fn_id="limited", trigger=inngest.TriggerEvent(event="dash/limited"), retries=0,
                            concurrency=[inngest.Concurrency(limit=1, key="event.data.k")])
    async def limited(ctx: inngest.Context) -> Any:
        gate = Path(ctx.event.data["gate"])

        async def wait_for_gate() -> str:
            deadline = time.monotonic() + 30
            while not gate.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return "through"

        return await ctx.step.run("gate", wait_for_gate)

    @client.create_function(fn_id="rated", trigger=inngest.TriggerEvent(event="dash/rated"), retries=0,
                            rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(minutes=1)))
    async def rated(ctx: inngest.Context) -> str:
        return "admitted"

    return [replayable, limited, rated]


stack = sdk_stack("dash", _functions)


def _runs_of(engine: Any, event_id: str, slug: str) -> list[dict[str, Any]]:
    return [r for r in engine.get(f"/v1/events/{event_id}/runs").json()["data"] if r["function_slug"] == slug]


def _ended(engine: Any, event_id: str, slug: str, count: int) -> list[dict[str, Any]]:
    return wait_for(lambda: len(runs := [r for r in _runs_of(engine, event_id, slug)
                                         if r["status"] in ("Completed", "Failed")]) >= count and runs,
                    timeout=20, what=f"{count} ended runs of {slug} for event {event_id}")


def _utc(when: datetime.datetime) -> str:
    """As a browser's datetime-local input with step=1 sends it: no zone (the form says UTC)."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def test_replay_from_the_dashboard_creates_new_runs_marked_as_replays_of_their_originals(
        stack: Any, send_event: Any, step_log: Any) -> None:
    engine, state, app_id = stack
    state["log"] = log = step_log()
    slug = f"{app_id}-replayable"
    start = _now() - datetime.timedelta(seconds=1)
    ok = send_event(engine, "dash/go", {"tag": "ok"})
    bad = send_event(engine, "dash/go", {"tag": "bad", "fail": True})
    assert _ended(engine, ok, slug, 1)[0]["status"] == "Completed"
    original = _ended(engine, bad, slug, 1)[0]
    assert original["status"] == "Failed"
    assert engine.get(f"/v1/runs/{original['run_id']}").json()["data"]["replay_of"] is None
    end = _now() + datetime.timedelta(seconds=1)
    fields = {"from": _utc(start), "to": _utc(end), "status": "Failed"}

    with httpx.Client(base_url=engine.url, timeout=10) as browser:
        preview = browser.get(f"/functions/{slug}", params={**fields, "preview": "1"})
        assert preview.status_code == 200, preview.text
        assert "1 run of replayable matches (status Failed)" in preview.text
        assert 'data-testid="replay-confirm"' in preview.text
        token = CSRF.findall(preview.text)[-1]
        posted = browser.post(f"/functions/{slug}/replay", data={**fields, "csrf_token": token})
        assert posted.status_code == 303, posted.text
        target = posted.headers["location"]
        assert parse_qs(urlsplit(target).query) == {"function": [slug], "notice": ["replayed"], "n": ["1"]}
        listing = browser.get(target).text
        assert "Replay started: 1 new run, each marked as a replay." in listing
        assert f'href="/runs/{original["run_id"]}" title="a replay of run {original["run_id"]}"' in listing

    runs = _ended(engine, bad, slug, 2)
    replay = next(r for r in runs if r["run_id"] != original["run_id"])
    assert replay["status"] == "Failed"
    rest = engine.get(f"/v1/runs/{replay['run_id']}").json()["data"]
    assert rest["replay_of"] == original["run_id"], "GET /v1/runs/{id} names the original"
    assert sorted(log.lines()) == ["ran-bad", "ran-bad", "ran-ok"], "only the Failed run ran again, really"
    assert len(_runs_of(engine, ok, slug)) == 1

    twin = httpx.get(f"{engine.url}/runs/{replay['run_id']}.json", timeout=5).json()
    assert twin["run"]["summary"]["replay_of"] == original["run_id"]
    page = httpx.get(f"{engine.url}/runs/{replay['run_id']}", timeout=5).text
    assert f'<dd data-testid="replay-of"><a href="/runs/{original["run_id"]}">' in page
    back = httpx.get(f"{engine.url}/runs/{original['run_id']}.json", timeout=5).json()
    assert back["run"]["replays"] == [replay["run_id"]] and back["run"]["summary"]["replay_of"] is None
    listed = httpx.get(f"{engine.url}/runs.json", params={"function": slug}, timeout=5).json()["runs"]
    assert {r["run_id"]: r["replay_of"] for r in listed}[replay["run_id"]] == original["run_id"]


@pytest.mark.parametrize(("fields", "says"), [
    ({"from": "2026-11-02T00:00:00", "to": "2026-11-01T00:00:00"}, "is after"),
    ({"from": "2020-01-01T00:00:00", "to": "2020-01-02T00:00:00"}, "no run of"),
    ({"from": "2026-09-01T00:00", "to": "2026-11-01T00:00"}, "longer than 31 days"),
    ({"from": "yesterday", "to": "2026-11-01T00:00:00"}, "RFC 3339"),
])
def test_a_refused_replay_says_why_on_the_form_and_starts_nothing(stack: Any, fields: dict[str, str],
                                                                   says: str) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-replayable"
    before = len(engine.get("/v1/runs", params={"function_id": slug, "limit": 500}).json()["data"])
    with httpx.Client(base_url=engine.url, timeout=10) as browser:
        token = CSRF.findall(browser.get("/apps").text)[-1]  # any form of this browser's session
        page = browser.post(f"/functions/{slug}/replay", data={**fields, "csrf_token": token})
        assert page.status_code == 400
        assert says in page.text and 'data-testid="replay-error"' in page.text
        assert f'value="{fields["from"]}"' in page.text, "the form keeps what was typed"
        as_json = browser.post(f"/functions/{slug}/replay", data={**fields, "csrf_token": token},
                               headers={"accept": "application/json"})
        assert as_json.status_code == 400 and says in as_json.json()["error"] and as_json.json()["hint"]
        preview = browser.get(f"/functions/{slug}.json", params={**fields, "preview": "1"}).json()
        assert says in preview["replay"]["error"] and preview["replay"]["matching"] in (None, 0)
        no_token = browser.post(f"/functions/{slug}/replay", data={"from": _utc(_now()), "to": _utc(_now())})
        assert no_token.status_code == 403
    assert len(engine.get("/v1/runs", params={"function_id": slug, "limit": 500}).json()["data"]) == before


def test_a_call_parked_on_a_concurrency_key_shows_why_it_waits(stack: Any, send_event: Any,
                                                               tmp_path: Path) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-limited"
    gate = tmp_path / "gate"
    first = send_event(engine, "dash/limited", {"k": "k1", "gate": str(gate)})
    holder = wait_for(lambda: _runs_of(engine, first, slug), timeout=20, what="the first run")[0]["run_id"]
    wait_for(lambda: [w for w in httpx.get(f"{engine.url}/runs/{holder}.json", timeout=5).json()["waits"]
                      if w["kind"] == "running"], timeout=20, what="the first run's call to be in flight")
    second = send_event(engine, "dash/limited", {"k": "k1", "gate": str(gate)})
    run_id = wait_for(lambda: _runs_of(engine, second, slug), timeout=20, what="the second run")[0]["run_id"]
    reason = 'waiting: concurrency limit 1 on key "k1"'
    twin = wait_for(lambda: (t := httpx.get(f"{engine.url}/runs/{run_id}.json", timeout=5).json())
                    and any(w["kind"] == "parked" for w in t["waits"]) and t,
                    timeout=20, what="the second run's call to be parked")
    assert [w["reason"] for w in twin["waits"] if w["kind"] == "parked"] == [reason]
    assert twin["run"]["summary"]["waiting"] == reason
    page = httpx.get(f"{engine.url}/runs/{run_id}", timeout=5).text
    assert f'<span data-testid="parked">{reason.replace(chr(34), "&#34;")}</span>' in page
    listed = httpx.get(f"{engine.url}/runs.json", params={"function": slug}, timeout=5).json()["runs"]
    assert {r["run_id"]: r["waiting"] for r in listed}[run_id] == reason
    fn = httpx.get(f"{engine.url}/functions/{slug}.json", timeout=5).json()
    assert [(w["text"], w["calls"]) for w in fn["waiting"]] == [(reason, 1)]
    assert ["concurrency", "1 call in flight per event.data.k (scope fn)"] in fn["flow"]

    gate.touch()
    _ended(engine, second, slug, 1)
    done = httpx.get(f"{engine.url}/runs/{run_id}.json", timeout=5).json()
    assert done["run"]["summary"]["waiting"] is None and not done["waits"]


def test_a_paused_function_and_the_events_it_skipped_are_shown(stack: Any, send_event: Any) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-replayable"
    r = httpx.post(f"{engine.url}/v1/functions/{slug}/pause", headers=engine.headers, timeout=5)
    assert r.status_code == 200, r.text
    try:
        fn = httpx.get(f"{engine.url}/functions/{slug}.json", timeout=5).json()
        assert fn["function"]["paused_at"] is not None
        assert 'data-testid="function-paused"' in httpx.get(f"{engine.url}/functions/{slug}", timeout=5).text
        apps = httpx.get(f"{engine.url}/apps.json", timeout=5).json()["apps"]
        paused = {f["slug"]: f["paused_at"] for a in apps for f in a["functions"]}
        assert paused[slug] is not None and paused[f"{app_id}-limited"] is None
        assert "since" in httpx.get(f"{engine.url}/runs", params={"function": slug}, timeout=5).text

        eid = send_event(engine, "dash/go", {"tag": "while-paused"})
        skips = wait_for(lambda: httpx.get(f"{engine.url}/events/{eid}.json", timeout=5).json()["skips"],
                         timeout=20, what="the skip to be recorded")
        assert [(s["function_slug"], s["reason"], s["text"]) for s in skips] == [
            (slug, "paused", "skipped: the function was paused")]
        assert "skipped: the function was paused" in httpx.get(f"{engine.url}/events/{eid}", timeout=5).text
        fn = httpx.get(f"{engine.url}/functions/{slug}.json", timeout=5).json()
        assert fn["skips"][0]["event_id"] == eid
    finally:
        assert httpx.post(f"{engine.url}/v1/functions/{slug}/unpause", headers=engine.headers,
                          timeout=5).status_code == 200
    assert httpx.get(f"{engine.url}/functions/{slug}.json", timeout=5).json()["function"]["paused_at"] is None


def test_an_event_over_a_rate_limit_says_it_was_skipped(stack: Any, send_event: Any) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-rated"
    first = send_event(engine, "dash/rated", {})
    _ended(engine, first, slug, 1)
    second = send_event(engine, "dash/rated", {})
    skips = wait_for(lambda: httpx.get(f"{engine.url}/events/{second}.json", timeout=5).json()["skips"],
                     timeout=20, what="the rate-limit skip")
    assert [(s["function_slug"], s["text"]) for s in skips] == [(slug, "skipped by rate limit")]
    assert not _runs_of(engine, second, slug)
    assert httpx.get(f"{engine.url}/events/{first}.json", timeout=5).json()["skips"] == []


def _rest_pages(engine: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of ``GET /v1/runs`` with ``params``, one run a page, following ``next_cursor``."""
    runs: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = engine.get("/v1/runs", params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        runs += r.json()["data"]
        cursor = r.json()["metadata"]["next_cursor"]
        if cursor is None:
            return runs


def test_v1_runs_takes_the_dashboards_filters_and_lists_what_runs_json_lists(stack: Any, send_event: Any,
                                                                             tmp_path: Path) -> None:
    engine, _, app_id = stack
    slug = f"{app_id}-replayable"
    ok = send_event(engine, "dash/go", {"tag": "listed"})
    bad = send_event(engine, "dash/go", {"tag": "listed-bad", "fail": True})
    (gate := tmp_path / "open").touch()
    other = send_event(engine, "dash/limited", {"k": "listed", "gate": str(gate)})  # a run of another function
    _ended(engine, ok, slug, 1)
    _ended(engine, bad, slug, 1)
    _ended(engine, other, f"{app_id}-limited", 1)

    def twin(**params: str) -> list[str]:
        return [r["run_id"] for r in httpx.get(f"{engine.url}/runs.json", params={"limit": "200", **params},
                                               timeout=5).json()["runs"]]

    failed = _rest_pages(engine, {"function": slug, "status": "Failed", "since": "1h"})
    assert [r["run_id"] for r in failed] == twin(function=slug, status="Failed", since="1h")
    assert {r["function_slug"] for r in failed} == {slug} and {r["status"] for r in failed} == {"Failed"}
    both = _rest_pages(engine, {"function": slug, "status": ["Failed", "Completed"]})
    ended = set(twin(function=slug, status="Failed")) | set(twin(function=slug, status="Completed"))
    assert {r["run_id"] for r in both} == ended and len(both) == len(ended)
    assert [r["run_id"] for r in both] == sorted((r["run_id"] for r in both), reverse=True), "newest first"
    comma = engine.get("/v1/runs", params={"function": slug, "status": "failed,completed", "limit": 500})
    assert [r["run_id"] for r in comma.json()["data"]] == [r["run_id"] for r in both]
    uuid = next(f["id"] for f in engine.get("/v1/functions").json()["data"] if f["slug"] == slug)
    by_uuid = engine.get("/v1/runs", params={"function_id": uuid, "status": "Failed", "limit": 500}).json()["data"]
    assert [r["run_id"] for r in by_uuid] == [r["run_id"] for r in failed]
    assert engine.get("/v1/runs", params={"function": slug, "since": "2999-01-01"}).json()["data"] == []

    for params, says in (({"status": "Bogus"}, "unknown status 'Bogus'"), ({"since": "yesterday"}, "'since'"),
                         ({"function": slug, "function_id": "x"}, "disagree")):
        r = engine.get("/v1/runs", params=params)
        assert r.status_code == 422, r.text
        assert says in r.json()["error"] and r.json()["hint"]
