"""Flow-control state and the Replay form on a real store file (no engine): rows as the engine writes them.

The end-to-end path (the real SDK, a real engine, the Replay button
creating runs) is ``tests/engine/dashboard/test_dashboard_flow.py``; here
are the cases that need rows an engine only makes slowly or rarely: more
runs than one replay may start, a throttled start, every parked-key shape,
and the auth rules on the new page and form.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from tests.engine.dashboard.conftest import TOKEN, DashboardFactory
from tests.engine.dashboard.seeder import Seeder

from agentcmd.engine.dashboard import replayform
from agentcmd.engine.flow import replay
from agentcmd.engine.flow.replay import ReplayInputError
from agentcmd.engine.store.queries import flowtext

SLUG = "agentcmd-build"


def _config(seed: Seeder, slug: str, **options: object) -> None:
    config = {"id": slug, "name": "build", "triggers": [{"event": "app/build.requested"}], **options}
    seed.write(lambda c: c.execute("UPDATE functions SET config=? WHERE slug=?", (json.dumps(config), slug)))


@pytest.fixture
def fn(seed: Seeder) -> str:
    seed.app()
    return seed.function()


@pytest.mark.parametrize(("key", "limit", "says"), [
    ("fn:agentcmd-build:acct-1", 10, 'waiting: concurrency limit 10 on key "acct-1"'),
    ("fn:agentcmd-build:", 2, "waiting: concurrency limit 2 for the function"),
    ("account:openai", 5, 'waiting: concurrency limit 5 on account key "openai"'),
    ("env:", 1, 'waiting: concurrency limit 1 on env key ""'),
    ("paused:agentcmd-build", 0, "waiting: the function is paused"),
])
def test_a_parked_key_reads_as_a_sentence(key: str, limit: int, says: str) -> None:
    assert flowtext.waiting_reason(key, limit) == says


def test_the_replay_form_defaults_to_the_last_day_and_reads_zoneless_times_as_utc() -> None:
    form = replayform.defaults(1_790_000_000_000)        # 2026-09-21T14:13:20Z
    assert (form.start, form.end) == ("2026-09-20T14:14", "2026-09-21T14:14")
    req = replayform.to_request(replayform.ReplayForm("2026-09-21T14:00", "2026-09-21T14:00:30+00:00", "failed"))
    assert (req.from_ms, req.to_ms, req.statuses) == (1_789_999_200_000, 1_789_999_230_000, ("Failed",))
    with pytest.raises(ReplayInputError, match="swap"):
        replayform.to_request(replayform.ReplayForm("2026-09-21T15:00", "2026-09-21T14:00"))


def test_a_preview_over_the_cap_says_to_split_the_range(dashboard: DashboardFactory, seed: Seeder, fn: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "MAX_RUNS", 2)
    runs = [seed.run(fn) for _ in range(3)]
    base = dashboard()
    fields = {"from": "2026-09-21T00:00", "to": "2026-09-22T00:00", "preview": "1"}
    twin = httpx.get(f"{base}/functions/{fn}.json", params=fields).json()
    assert "more than 2 runs" in twin["replay"]["error"] and "narrower" in twin["replay"]["error"]
    page = httpx.get(f"{base}/functions/{fn}", params=fields).text
    assert 'data-testid="replay-error"' in page and 'data-testid="replay-confirm"' not in page
    monkeypatch.setattr(replay, "MAX_RUNS", 10)
    page = httpx.get(f"{base}/functions/{fn}", params=fields).text
    assert "3 runs of build match." in page and "Replay 3 runs" in page
    assert len(runs) == 3


def test_a_dashboard_without_the_engine_refuses_a_replay_with_a_hint(dashboard: DashboardFactory, seed: Seeder,
                                                                     fn: str) -> None:
    base = dashboard()
    with httpx.Client(base_url=base) as client:
        token = re.findall(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/apps").text)[-1]
        r = client.post(f"/functions/{fn}/replay", data={"csrf_token": token, "from": "2026-09-21T00:00",
                                                         "to": "2026-09-22T00:00"},
                        headers={"accept": "application/json"})
    assert r.status_code == 503 and "/replay" in r.json()["hint"]


def test_a_throttled_run_waits_with_the_reason_until_its_slot(dashboard: DashboardFactory, seed: Seeder,
                                                              fn: str) -> None:
    _config(seed, fn, throttle={"limit": 3, "period": "1m", "key": "event.data.user"})
    run = seed.run(fn, status="Queued")
    later = int(time.time() * 1000) + 600_000
    seed.write(lambda c: c.execute("INSERT INTO queue (kind, run_id, step_id, ready_at) VALUES ('start',?,'step',?)",
                                   (run, later)))
    base = dashboard()
    twin = httpx.get(f"{base}/runs/{run}.json").json()
    assert twin["run"]["summary"]["waiting"] == "waiting: throttle 3 per 1m"
    assert [(w["kind"], w["reason"]) for w in twin["waits"]] == [("delayed", "waiting: throttle 3 per 1m")]
    assert "the first call is scheduled for" in httpx.get(f"{base}/runs/{run}").text
    assert httpx.get(f"{base}/runs.json").json()["runs"][0]["waiting"] == "waiting: throttle 3 per 1m"
    flow = httpx.get(f"{base}/functions/{fn}.json").json()["flow"]
    assert flow == [["throttle", "3 per 1m per event.data.user"]]


def test_a_call_parked_by_a_pause_and_the_skips_show_on_every_page(dashboard: DashboardFactory, seed: Seeder,
                                                                   fn: str) -> None:
    run = seed.run(fn, status="Running")
    seed.write(lambda c: c.execute("INSERT INTO flow_paused (slug, paused_at) VALUES (?, ?)", (fn, seed.clock)))
    item = seed.write(lambda c: c.execute("INSERT INTO queue (kind, run_id, step_id, ready_at, attempt) "
                                          "VALUES ('step',?,'step',?,1)", (run, seed.clock + 3_600_000)).lastrowid)
    seed.write(lambda c: c.execute("INSERT INTO flow_waiting (item_id, key, lim, score, ready_at) VALUES (?,?,?,?,?)",
                                   (item, f"paused:{fn}", 0, 0, seed.clock)))
    skipped = seed.event()
    for reason in ("paused", "rate_limit", "singleton"):
        seed.write(lambda c, r=reason: c.execute(
            "INSERT INTO flow_skips (function_slug, event_id, reason, at) VALUES (?,?,?,?)", (fn, skipped, r, 1)))
    base = dashboard()
    twin = httpx.get(f"{base}/runs/{run}.json").json()
    assert [(w["kind"], w["reason"]) for w in twin["waits"]] == [("parked", "waiting: the function is paused")]
    assert twin["run"]["function_paused_at"] is not None
    assert 'data-testid="function-paused"' in httpx.get(f"{base}/runs/{run}").text
    fn_twin = httpx.get(f"{base}/functions/{fn}.json").json()
    assert [(w["calls"], w["text"]) for w in fn_twin["waiting"]] == [(1, "waiting: the function is paused")]
    assert [s["text"] for s in fn_twin["skips"]] == [
        "skipped by singleton: a run for the same key was in progress", "skipped by rate limit",
        "skipped: the function was paused"]
    assert [s["reason"] for s in httpx.get(f"{base}/events/{skipped}.json").json()["skips"]] == [
        "paused", "rate_limit", "singleton"]
    assert "skipped by rate limit" in httpx.get(f"{base}/events/{skipped}").text
    assert httpx.get(f"{base}/functions/nope.json").status_code == 404


def test_the_function_page_and_the_replay_post_follow_the_dashboard_auth(dashboard: DashboardFactory, fn: str
                                                                        ) -> None:
    base = dashboard("production", "0.0.0.0")
    assert httpx.get(f"{base}/functions/{fn}.json").status_code == 401
    assert httpx.get(f"{base}/functions/{fn}").status_code == 303
    assert httpx.post(f"{base}/functions/{fn}/replay", data={"from": "x", "to": "y"}).status_code == 401
    with httpx.Client(base_url=base) as client:
        client.post("/login", data={"token": TOKEN, "next": "/"})
        page = client.get(f"/functions/{fn}")
        assert page.status_code == 200 and "Replay runs" in page.text
        for path in (f"/functions/{fn}", f"/functions/{fn}.json"):
            assert TOKEN not in client.get(path).text
        assert client.post(f"/functions/{fn}/replay", data={"from": "x", "to": "y"}).status_code == 403
