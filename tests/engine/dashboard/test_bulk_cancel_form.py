"""The "Cancel running runs" form on a function's page, on a real store file (the REST route and CLI:
tests/engine/api/test_cancellations.py)."""

from __future__ import annotations

import re

import httpx
from tests.engine.dashboard.conftest import TOKEN, DashboardFactory
from tests.engine.dashboard.seeder import Seeder

from agentcmd.engine.store.queries.models import rfc3339

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def _statuses(seed: Seeder, run_ids: list[str]) -> list[str]:
    return seed.store.db.read_sync(lambda c: [str(c.execute("SELECT status FROM runs WHERE run_id=?",
                                                            (r,)).fetchone()[0]) for r in run_ids])


def test_the_form_cancels_the_active_runs_in_the_range_and_says_how_many(dashboard: DashboardFactory,
                                                                        seed: Seeder) -> None:
    seed.app()
    fn = seed.function()
    other = seed.function("agentcmd-other", name="other")
    old = seed.run(fn, status="Running")
    running = [seed.run(fn, status="Running"), seed.run(fn, status="Queued")]
    done = seed.run(fn, status="Completed")
    elsewhere = seed.run(other, status="Running")
    base = dashboard()
    with httpx.Client(base_url=base) as client:
        page = client.get(f"/functions/{fn}").text
        form = page[page.index('data-testid="cancel-runs-form"'):]
        assert 'action="/functions/agentcmd-build/cancel-runs"' in page and "Cancel running runs" in form
        token = CSRF.search(form)
        assert token is not None
        created = seed.store.db.read_sync(lambda c: int(c.execute("SELECT created_at FROM runs WHERE run_id=?",
                                                                  (running[0],)).fetchone()[0]))
        start = rfc3339(created)[:19]   # a datetime-local value (whole seconds, no zone), read as UTC
        r = client.post(f"/functions/{fn}/cancel-runs", data={"csrf_token": token.group(1), "from": start, "to": ""})
        assert r.status_code == 303 and r.headers["location"] == f"/functions/{fn}?notice=bulk-cancelled&n=2"
        assert "Cancelled 2 running or queued runs." in client.get(r.headers["location"]).text
    assert _statuses(seed, running) == ["Cancelled", "Cancelled"]
    assert _statuses(seed, [old, done, elsewhere]) == ["Running", "Completed", "Running"]


def test_a_bad_time_is_refused_with_the_fix_and_nothing_is_cancelled(dashboard: DashboardFactory,
                                                                     seed: Seeder) -> None:
    seed.app()
    fn = seed.function()
    run = seed.run(fn, status="Running")
    with httpx.Client(base_url=dashboard()) as client:
        token = CSRF.findall(client.get(f"/functions/{fn}").text)[-1]
        r = client.post(f"/functions/{fn}/cancel-runs", data={"csrf_token": token, "from": "soon"},
                        headers={"accept": "application/json"})
        assert r.status_code == 400 and "not an RFC 3339 time" in r.json()["error"]
    assert _statuses(seed, [run]) == ["Running"]


def test_the_form_needs_the_csrf_token_and_a_login_where_the_dashboard_does(dashboard: DashboardFactory,
                                                                           seed: Seeder) -> None:
    seed.app()
    fn = seed.function()
    run = seed.run(fn, status="Running")
    base = dashboard("production", "0.0.0.0")
    assert httpx.post(f"{base}/functions/{fn}/cancel-runs", data={}).status_code == 401
    with httpx.Client(base_url=base) as client:
        client.post("/login", data={"token": TOKEN, "next": "/"})
        assert 'data-testid="cancel-runs-form"' in client.get(f"/functions/{fn}").text
        assert client.post(f"/functions/{fn}/cancel-runs", data={}).status_code == 403, "no CSRF token"
        assert client.post(f"/functions/{fn}/cancel-runs", data={"csrf_token": "0" * 64}).status_code == 403
    assert _statuses(seed, [run]) == ["Running"]


def test_a_read_only_dashboard_shows_no_form(dashboard: DashboardFactory, seed: Seeder) -> None:
    seed.app()
    fn = seed.function()
    assert "cancel-runs-form" not in httpx.get(f"{dashboard(actions=False)}/functions/{fn}").text
