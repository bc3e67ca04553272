"""The Pause/Unpause buttons and the skipped-events query on a real store file (no engine).

The end-to-end path (a real engine, the real SDK, a held run resumed by the
button, the REST route) is ``tests/engine/dashboard/test_dashboard_pause.py``;
here: which button the page shows in which state, a dashboard with no engine
behind it refusing with the CLI as the fix, the login rules, and one query
answering both the dashboard and ``GET /v1/functions/{id}/skips``.
"""

from __future__ import annotations

import re

import httpx
import pytest
from tests.engine.dashboard.conftest import TOKEN, DashboardFactory
from tests.engine.dashboard.seeder import Seeder

from agentcmd.engine.store import queries
from agentcmd.engine.store.queries.models import rfc3339

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest.fixture
def fn(seed: Seeder) -> str:
    seed.app()
    return seed.function()


def _pause(seed: Seeder, slug: str) -> None:
    seed.write(lambda c: c.execute("INSERT INTO flow_paused (slug, paused_at) VALUES (?, ?)", (slug, seed.clock)))


def test_the_page_offers_pause_when_active_and_unpause_when_paused(dashboard: DashboardFactory, seed: Seeder,
                                                                   fn: str) -> None:
    base = dashboard()
    page = httpx.get(f"{base}/functions/{fn}").text
    assert 'action="/functions/agentcmd-build/pause"' in page and "unpause-form" not in page
    assert CSRF.search(page[page.index('data-testid="pause-form"'):])
    assert f"agentcmd functions pause {fn}" in page
    _pause(seed, fn)
    page = httpx.get(f"{base}/functions/{fn}").text
    assert 'action="/functions/agentcmd-build/unpause"' in page and 'data-testid="pause-form"' not in page
    assert f"agentcmd functions unpause {fn}" in page and "POST /v1/functions" not in page


def test_a_read_only_dashboard_names_the_cli_instead_of_a_button(dashboard: DashboardFactory, fn: str) -> None:
    page = httpx.get(f"{dashboard(actions=False)}/functions/{fn}").text
    assert "pause-form" not in page and f"agentcmd functions pause|unpause {fn}" in page


def test_a_dashboard_without_the_engine_refuses_a_pause_with_the_cli_as_the_fix(dashboard: DashboardFactory,
                                                                                fn: str) -> None:
    base = dashboard()
    with httpx.Client(base_url=base) as client:
        token = CSRF.findall(client.get(f"/functions/{fn}").text)[-1]
        for verb in ("pause", "unpause"):
            r = client.post(f"/functions/{fn}/{verb}", data={"csrf_token": token},
                            headers={"accept": "application/json"})
            assert r.status_code == 503 and f"agentcmd functions {verb} {fn}" in r.json()["hint"]


def test_the_buttons_need_a_login_where_the_dashboard_does(dashboard: DashboardFactory, fn: str) -> None:
    base = dashboard("production", "0.0.0.0")
    assert httpx.post(f"{base}/functions/{fn}/pause", data={}).status_code == 401
    with httpx.Client(base_url=base) as client:
        client.post("/login", data={"token": TOKEN, "next": "/"})
        page = client.get(f"/functions/{fn}").text
        assert 'data-testid="pause-form"' in page
        assert client.post(f"/functions/{fn}/pause", data={}).status_code == 403, "logged in, but no CSRF token"


def test_one_query_answers_the_rest_route_and_the_dashboard(dashboard: DashboardFactory, seed: Seeder,
                                                           fn: str) -> None:
    first, second = seed.event(), seed.event(name="app/other")
    for eid, reason, at in ((first, "paused", 1_000), (second, "rate_limit", 2_000)):
        seed.write(lambda c, e=eid, r=reason, t=at: c.execute(
            "INSERT INTO flow_skips (function_slug, event_id, reason, at) VALUES (?,?,?,?)", (fn, e, r, t)))
    rows = seed.store.db.read_sync(lambda c: queries.function_skips(c, fn))
    assert [(r["event_id"], r["event_name"], r["reason"], r["at"]) for r in rows] == [
        (second, "app/other", "rate_limit", rfc3339(2_000)), (first, "app/build.requested", "paused", rfc3339(1_000))]
    assert seed.store.db.read_sync(lambda c: queries.function_skips(c, f"uuid-{fn}", 1)) == rows[:1]
    assert seed.store.db.read_sync(lambda c: queries.function_skips(c, "nope")) is None
    shown = httpx.get(f"{dashboard()}/functions/{fn}.json").json()["skips"]
    assert [(s["event_id"], s["reason"], s["at"]) for s in shown] == [(r["event_id"], r["reason"], r["at"])
                                                                     for r in rows]
    assert [s.text for s in seed.store.db.read_sync(lambda c: queries.event_skip_rows(c, first))] == [
        "skipped: the function was paused"]
