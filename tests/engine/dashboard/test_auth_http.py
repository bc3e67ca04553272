"""Auth on every dashboard route, over HTTP: a table of route x mode x bind, then login, CSRF and rate limit.

The bind is the host the engine was told to listen on (``WebAuth.build``);
the test server itself always listens on loopback.
"""

from __future__ import annotations

import re

import httpx
import pytest
from tests.engine.dashboard.conftest import TOKEN, DashboardFactory
from tests.engine.dashboard.seeder import Seeder

from agentcmd.webauth.ratelimit import LoginLimiter

# (mode, bind, --dashboard-auth) -> is the dashboard locked behind a login?
CONFIGS = {
    "dev loopback": ("dev", "127.0.0.1", False, False),
    "dev remote (--allow-remote-dev)": ("dev", "0.0.0.0", False, False),
    "production loopback": ("production", "127.0.0.1", False, False),
    "production loopback --dashboard-auth": ("production", "127.0.0.1", True, True),
    "production 0.0.0.0": ("production", "0.0.0.0", False, True),
}
PAGES = ["/", "/runs", "/runs/{run}", "/events", "/events/{event}", "/apps"]
TWINS = ["/runs.json", "/?format=json", "/runs/{run}.json", "/events.json", "/events/{event}.json", "/apps.json"]


@pytest.fixture
def ids(seed: Seeder) -> dict[str, str]:
    seed.app()
    seed.function()
    event = seed.event()
    return {"run": seed.run(event_id=event, status="Running"), "event": event}


def csrf_of(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: httpx.Client) -> None:
    response = client.post("/login", data={"token": TOKEN, "next": "/"})
    assert response.status_code == 303, response.text


@pytest.mark.parametrize("config", list(CONFIGS))
def test_reads_on_every_route(config: str, dashboard: DashboardFactory, ids: dict[str, str]) -> None:
    mode, host, dashboard_auth, locked = CONFIGS[config]
    base = dashboard(mode, host, dashboard_auth)
    with httpx.Client(base_url=base) as anonymous:
        for path in (p.format(**ids) for p in PAGES):
            response = anonymous.get(path)
            if locked:
                assert response.status_code == 303, path
                assert response.headers["location"].startswith("/login?next="), path
            else:
                assert response.status_code == 200, path
        for path in (p.format(**ids) for p in TWINS):
            response = anonymous.get(path)
            assert response.status_code == (401 if locked else 200), path
            if locked:
                assert response.json()["code"] == "unauthorized"
        assert anonymous.get("/_dashboard/static/dashboard.css").status_code == 200
    if locked:
        with httpx.Client(base_url=base) as user:
            login(user)
            for path in (p.format(**ids) for p in PAGES + TWINS):
                assert user.get(path).status_code == 200, path


@pytest.mark.parametrize("config", list(CONFIGS))
def test_actions_need_csrf_and_a_session_when_locked(config: str, dashboard: DashboardFactory,
                                                     ids: dict[str, str]) -> None:
    mode, host, dashboard_auth, locked = CONFIGS[config]
    base = dashboard(mode, host, dashboard_auth)
    run_page = f"/runs/{ids['run']}"
    with httpx.Client(base_url=base) as client:
        if locked:
            assert client.post(f"{run_page}/cancel").status_code == 401
            assert client.post("/send", data={"name": "x/y"}).status_code == 401
            login(client)
        assert client.post(f"{run_page}/cancel").status_code == 403  # no CSRF token
        assert client.post(f"{run_page}/cancel", data={"csrf_token": "0" * 64}).status_code == 403
        token = csrf_of(client, run_page)
        send = client.post("/send", data={"csrf_token": token, "name": "app/ping", "data": "{}"})
        if mode == "production" and not locked:
            assert send.status_code == 403  # "send event" is dev only, or behind a login
            assert client.get("/send").status_code == 403
        else:
            assert send.status_code == 303 and send.headers["location"].startswith("/events/")
        cancel = client.post(f"{run_page}/cancel", data={"csrf_token": token})
        assert cancel.status_code == 303 and cancel.headers["location"].endswith("notice=cancelled")
        assert client.get(f"{run_page}.json").json()["run"]["summary"]["status"] == "Cancelled"


def test_a_csrf_token_from_another_browser_is_refused(dashboard: DashboardFactory, ids: dict[str, str]) -> None:
    base = dashboard()
    with httpx.Client(base_url=base) as alice, httpx.Client(base_url=base) as mallory:
        token = csrf_of(mallory, f"/runs/{ids['run']}")
        alice.get("/runs")  # alice has her own CSRF cookie
        assert alice.post(f"/runs/{ids['run']}/cancel", data={"csrf_token": token}).status_code == 403


def test_login_sets_a_signed_httponly_samesite_cookie(dashboard: DashboardFactory) -> None:
    base = dashboard("production", "0.0.0.0")
    with httpx.Client(base_url=base) as client:
        response = client.post("/login", data={"token": TOKEN, "next": "/apps"})
        assert response.status_code == 303 and response.headers["location"] == "/apps"
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("agentcmd_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert TOKEN not in cookie
        assert client.get("/apps").status_code == 200
        out = client.post("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.get("/apps").status_code == 303


def test_a_forged_session_cookie_is_refused(dashboard: DashboardFactory) -> None:
    base = dashboard("production", "0.0.0.0")
    forged = httpx.get(base + "/runs.json", cookies={"agentcmd_session": "abc.99999999999.deadbeef"})
    assert forged.status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil", "runs"])
def test_login_never_redirects_off_site(dashboard: DashboardFactory, target: str) -> None:
    response = httpx.post(dashboard("production", "0.0.0.0") + "/login", data={"token": TOKEN, "next": target})
    assert response.headers["location"] == "/"


def test_a_wrong_token_says_how_to_find_the_right_one(dashboard: DashboardFactory) -> None:
    response = httpx.post(dashboard("production", "0.0.0.0") + "/login", data={"token": "nope"})
    assert response.status_code == 401
    assert "agentcmd config dashboard-token" in response.text
    assert "agentcmd_session" not in response.headers.get("set-cookie", "")


def test_failed_logins_are_rate_limited(dashboard: DashboardFactory) -> None:
    base = dashboard("production", "0.0.0.0", limiter=LoginLimiter(max_failures=3, window_s=60))
    statuses = [httpx.post(base + "/login", data={"token": "guess"}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = httpx.post(base + "/login", data={"token": TOKEN})  # even the right token waits
    assert limited.status_code == 429
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert "Too many failed logins" in limited.text


def test_login_page_is_skipped_when_no_login_is_needed(dashboard: DashboardFactory) -> None:
    response = httpx.get(dashboard("dev") + "/login?next=/apps")
    assert response.status_code == 303 and response.headers["location"] == "/apps"


def test_nothing_about_the_engine_shows_before_login(dashboard: DashboardFactory, ids: dict[str, str]) -> None:
    base = dashboard("production", "0.0.0.0")
    login_page = httpx.get(base + "/login").text
    twin = httpx.get(base + "/runs.json").json()
    assert "engine.db" not in login_page and "engine.db" not in twin["banner"]
    assert "persistent: history is kept in the engine database" in login_page
    assert 'aria-label="Main"' not in login_page  # no navigation to pages that need a login
