"""The read pages and their JSON twins, over HTTP, on a real store file."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest
from tests.engine.dashboard.conftest import TOKEN, DashboardFactory
from tests.engine.dashboard.seeder import BASE_MS, Seeder


@pytest.fixture
def seeded(seed: Seeder) -> dict[str, str]:
    seed.app()
    seed.function()
    seed.function("agentcmd-deploy", name="deploy", event="app/deploy.requested")
    ok = seed.run(output={"built": True})
    seed.step(ok, "checkout", {"data": {"sha": "abc123"}})
    seed.step(ok, "compile", {"data": "compiled 12 files"})
    failed = seed.run(status="Failed",
                      output={"name": "CalledProcessError", "message": "make exited with 2",
                              "stack": "Traceback (most recent call last):\n  File build.py line 3"})
    seed.step(failed, "make", {"error": {"name": "CalledProcessError", "message": "make exited with 2",
                                         "stack": "Traceback: make"}}, status="failed", attempt=3)
    running = seed.run("agentcmd-deploy", status="Running")
    seed.step(running, "plan", {"data": None})
    seed.sleep(running, "hash-cooldown", BASE_MS + 3_600_000)
    seed.wait(running, "hash-approval", "app/deploy.approved", BASE_MS + 7_200_000, "event.data.ok == true")
    seed.history(running, "step_retry", "attempt 2 after HTTP 500", "hash-plan")
    seed.in_flight(running, BASE_MS + 60_000)
    return {"ok": ok, "failed": failed, "running": running}


def test_dev_banner_says_ephemeral(dashboard: DashboardFactory) -> None:
    page = httpx.get(dashboard("dev") + "/")
    assert page.status_code == 200
    assert "ephemeral: history is lost on restart" in page.text


def test_production_banner_says_persistent_with_the_db_path(dashboard: DashboardFactory) -> None:
    body = httpx.get(dashboard("production") + "/runs.json").json()
    assert body["mode"] == "production"
    assert body["banner"].startswith("persistent: history is kept in ")
    assert body["banner"].endswith("engine.db")


def test_runs_page_lists_newest_first_with_status_and_duration(dashboard: DashboardFactory,
                                                               seeded: dict[str, str]) -> None:
    base = dashboard()
    text = httpx.get(base + "/runs").text
    ids = re.findall(r'data-run-id="([0-9A-Z]+)"', text)
    assert ids == [seeded["running"], seeded["failed"], seeded["ok"]]
    assert "4.2 s" in text and "running" in text and "Failed" in text
    twin = httpx.get(base + "/runs.json").json()
    assert [r["run_id"] for r in twin["runs"]] == ids
    assert twin["counts"] == {"Completed": 1, "Failed": 1, "Running": 1}
    assert twin["runs"][2]["duration_ms"] == 4200
    assert twin["runs"][2]["started_at"].endswith("Z")
    assert httpx.get(base + "/?format=json").json()["runs"] == twin["runs"]


@pytest.mark.parametrize(("query", "expected"), [
    ("status=Failed", ["failed"]),
    ("function=agentcmd-deploy", ["running"]),
    ("status=Completed&function=agentcmd-build", ["ok"]),
    ("since=2027-01-01", []),
    ("since=2026-09-21T00:00:00Z", ["running", "failed", "ok"]),
])
def test_runs_filters(dashboard: DashboardFactory, seeded: dict[str, str], query: str, expected: list[str]) -> None:
    twin = httpx.get(dashboard() + f"/runs.json?{query}").json()
    assert [r["run_id"] for r in twin["runs"]] == [seeded[k] for k in expected]


@pytest.mark.parametrize(("query", "message"), [
    ("status=Exploded", "unknown status"),
    ("since=yesterday-ish", "'since' must be like"),
    ("limit=0", "'limit' must be"),
])
def test_bad_filters_answer_422_with_a_fix(dashboard: DashboardFactory, query: str, message: str) -> None:
    base = dashboard()
    twin = httpx.get(base + f"/runs.json?{query}")
    assert twin.status_code == 422
    assert message in twin.json()["error"] and twin.json()["hint"]
    page = httpx.get(base + f"/runs?{query}")
    assert page.status_code == 422 and message in unescape(page.text) and "Traceback" not in page.text


def test_runs_are_paged_in_sql_with_a_cursor(dashboard: DashboardFactory, seed: Seeder) -> None:
    seed.app()
    seed.function()
    ids = [seed.run() for _ in range(7)][::-1]
    base = dashboard()
    first = httpx.get(base + "/runs.json?limit=3").json()
    assert [r["run_id"] for r in first["runs"]] == ids[:3]
    second = httpx.get(base + f"/runs.json?limit=3&before={first['next_cursor']}").json()
    third = httpx.get(base + f"/runs.json?limit=3&before={second['next_cursor']}").json()
    assert [r["run_id"] for r in second["runs"] + third["runs"]] == ids[3:]
    assert third["next_cursor"] is None
    html = httpx.get(base + "/runs?limit=3").text
    assert 'rel="next"' in html and f"before={first['next_cursor']}" in html


def test_run_page_shows_steps_outputs_and_errors_with_stack(dashboard: DashboardFactory,
                                                            seeded: dict[str, str]) -> None:
    base = dashboard()
    html = httpx.get(base + f"/runs/{seeded['failed']}").text
    assert "CalledProcessError" in html and "make exited with 2" in html
    assert "Traceback (most recent call last)" in html
    assert "attempt 4" in html
    twin = httpx.get(base + f"/runs/{seeded['failed']}.json").json()
    assert twin["run"]["summary"]["status"] == "Failed"
    assert twin["run"]["error"]["stack"].startswith("Traceback")
    assert twin["steps"][0]["error"]["message"] == "make exited with 2"
    ok = httpx.get(base + f"/runs/{seeded['ok']}.json").json()
    assert [s["name"] for s in ok["steps"]] == ["checkout", "compile"]
    assert ok["steps"][0]["output"] == {"sha": "abc123"}
    assert ok["steps"][0]["duration_ms"] == 1500
    assert ok["run"]["output"] == {"built": True}


def test_run_page_shows_sleeps_and_waits_with_their_deadlines(dashboard: DashboardFactory,
                                                              seeded: dict[str, str]) -> None:
    base = dashboard()
    html = httpx.get(base + f"/runs/{seeded['running']}").text
    assert "Sleeping until" in html and "2026-09-21" in html
    assert "Waiting for event <code>app/deploy.approved</code>" in html
    assert "event.data.ok == true" in html
    assert "attempt 2 after HTTP 500" in html
    assert 'data-poll="/runs/' in html  # still running: the page updates itself
    assert "In progress since" in html and "waiting for the app" in html
    waits = httpx.get(base + f"/runs/{seeded['running']}.json").json()["waits"]
    assert [w["kind"] for w in waits] == ["running", "sleep", "wait"]
    assert waits[0]["step_id"] is None  # a discovery call, not one step
    assert waits[0]["deadline"].endswith("Z")


def test_a_finished_run_page_does_not_poll(dashboard: DashboardFactory, seeded: dict[str, str]) -> None:
    assert "data-poll" not in httpx.get(dashboard() + f"/runs/{seeded['ok']}").text


def test_the_run_twin_agrees_with_the_store_query_the_rest_api_uses(dashboard: DashboardFactory, store: object,
                                                                    seeded: dict[str, str]) -> None:
    from agentcmd.engine.store import queries

    rest = store.db.read_sync(lambda c: queries.run_steps(c, seeded["ok"]))  # type: ignore[attr-defined]
    twin = httpx.get(dashboard() + f"/runs/{seeded['ok']}.json").json()
    assert [(s["step_id"], s["output"], s["started_at"], s["ended_at"]) for s in rest] == \
        [(s["step_id"], s["output"], s["started_at"], s["ended_at"]) for s in twin["steps"]]


def test_unknown_run_is_a_404_page_and_a_404_twin(dashboard: DashboardFactory) -> None:
    base = dashboard()
    page = httpx.get(base + "/runs/01NOPE")
    assert page.status_code == 404 and "no run with id" in page.text
    twin = httpx.get(base + "/runs/01NOPE.json")
    assert twin.status_code == 404 and twin.json()["code"] == "not_found"


def test_events_page_and_event_page_show_payload_and_runs(dashboard: DashboardFactory, seed: Seeder) -> None:
    seed.app()
    seed.function()
    eid = seed.event(data={"branch": "main <b>"})
    run_id = seed.run(event_id=eid)
    base = dashboard()
    listing = httpx.get(base + "/events.json").json()
    assert [(e["event_id"], e["run_count"]) for e in listing["events"]] == [(eid, 1)]
    html = httpx.get(base + f"/events/{eid}").text
    assert "main &lt;b&gt;" in html  # escaped
    assert f'/runs/{run_id}' in html
    twin = httpx.get(base + f"/events/{eid}.json").json()
    assert twin["event"]["body"]["data"] == {"branch": "main <b>"}
    assert [r["run_id"] for r in twin["runs"]] == [run_id]


def test_apps_page_shows_sync_status_functions_and_errors(dashboard: DashboardFactory, seed: Seeder) -> None:
    seed.app("agentcmd")
    seed.app("broken", url="http://127.0.0.1:9/nope", error="unreachable: connection refused")
    seed.function()
    base = dashboard()
    html = httpx.get(base + "/apps").text
    assert "sync failed" in html and "unreachable: connection refused" in html
    assert "event: app/build.requested" in html
    assert "Re-sync broken" in html
    twin = httpx.get(base + "/apps.json").json()
    assert [a["app_id"] for a in twin["apps"]] == ["agentcmd", "broken"]
    assert twin["apps"][0]["functions"][0]["slug"] == "agentcmd-build"


def test_pages_work_without_javascript_and_are_labelled(dashboard: DashboardFactory, seeded: dict[str, str]) -> None:
    html = httpx.get(dashboard() + "/runs").text
    assert '<html lang="en">' in html
    assert 'href="#content"' in html  # skip link
    for field in ("f-status", "f-function", "f-since"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    assert "<caption>" in html and 'scope="col"' in html
    assert 'aria-current="page"' in html


def test_static_files_are_served_and_nothing_else(dashboard: DashboardFactory) -> None:
    base = dashboard()
    assert httpx.get(base + "/_dashboard/static/dashboard.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(base + "/_dashboard/static/dashboard.css").status_code == 200
    assert httpx.get(base + "/_dashboard/static/..%2Fviews.py").status_code == 404


def test_pages_send_security_headers_and_server_timing(dashboard: DashboardFactory) -> None:
    page = httpx.get(dashboard() + "/runs")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["server-timing"].startswith("app;dur=")


def test_no_page_or_twin_reveals_the_dashboard_token(dashboard: DashboardFactory, seeded: dict[str, str]) -> None:
    base = dashboard("dev", dashboard_auth=True)
    with httpx.Client(base_url=base) as client:
        client.post("/login", data={"token": TOKEN, "next": "/"})
        for path in ("/", "/runs.json", f"/runs/{seeded['failed']}", f"/runs/{seeded['ok']}.json", "/events",
                     "/events.json", "/apps", "/apps.json", "/send", "/login"):
            response = client.get(path)
            assert TOKEN not in response.text, path
            assert all(TOKEN not in v for v in response.headers.values()), path
