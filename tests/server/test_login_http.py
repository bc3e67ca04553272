"""The workflow views' login on a locked app server, the API's cross-site refusal, and the CLI's bearer."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.harness.appserver import SIGNING_KEY, TOKEN, AppServerFactory

from agentcmd.errors import AuthError
from agentcmd.server.client import AppClient
from agentcmd.webauth.ratelimit import LoginLimiter


def test_a_login_sets_a_signed_httponly_samesite_cookie_and_logout_ends_it(app_server: AppServerFactory) -> None:
    server = app_server("production", "0.0.0.0")
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        form = browser.get("/login?next=/workflows/build")
        assert form.status_code == 200 and 'name="token"' in form.text
        assert TOKEN not in form.text and SIGNING_KEY not in form.text
        assert 'href="/workflows/build"' not in form.text  # no navigation before a login
        wrong = browser.post("/login", data={"token": "not-the-token", "next": "/workflows/build"})
        assert wrong.status_code == 401 and "agentcmd config dashboard-token" in wrong.text
        ok = browser.post("/login", data={"token": TOKEN, "next": "/workflows/build"})
        assert ok.status_code == 303 and ok.headers["location"] == "/workflows/build"
        cookie = ok.headers["set-cookie"]
        assert cookie.startswith("agentcmd_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert TOKEN not in cookie
        page = browser.get("/workflows/build")
        assert page.status_code == 200 and "Log out" in page.text and TOKEN not in page.text
        assert browser.post("/logout").status_code == 303
        assert browser.get("/workflows/build").status_code == 303


def test_login_never_redirects_to_another_site(app_server: AppServerFactory) -> None:
    server = app_server("production", "127.0.0.1", dashboard_auth=True)
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        for target in ("https://evil.example/", "//evil.example/x"):
            ok = browser.post("/login", data={"token": TOKEN, "next": target})
            assert ok.status_code == 303 and ok.headers["location"] == "/"


def test_failed_logins_are_rate_limited_and_a_success_clears_them(app_server: AppServerFactory) -> None:
    now = [1000.0]
    server = app_server("production", "0.0.0.0")
    server.auth.web.limiter = LoginLimiter(max_failures=5, window_s=60, clock=lambda: now[0])
    with httpx.Client(base_url=server.url, timeout=30) as guesser:
        for _ in range(5):
            assert guesser.post("/login", data={"token": "guess"}).status_code == 401
        blocked = guesser.post("/login", data={"token": TOKEN})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        now[0] += 61
        assert guesser.post("/login", data={"token": TOKEN}).status_code == 303


def test_a_form_token_from_before_the_login_is_stale_after_it(app_server: AppServerFactory) -> None:
    """CSRF tokens are bound to the session: one session's token is refused in another."""
    server = app_server("production", "0.0.0.0")
    with httpx.Client(base_url=server.url, timeout=30) as alice, httpx.Client(base_url=server.url, timeout=30) as bob:
        for user in (alice, bob):
            assert user.post("/login", data={"token": TOKEN}).status_code == 303
        match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', alice.get("/workflows/build").text)
        assert match
        assert bob.post("/runs/01NOSUCHRUN/cancel", data={"csrf_token": match.group(1)}).status_code == 403
        assert alice.post("/runs/01NOSUCHRUN/cancel", data={"csrf_token": match.group(1)}).status_code == 404


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}])
def test_an_open_api_refuses_pages_on_other_sites(app_server: AppServerFactory, headers: dict[str, str]) -> None:
    """A page elsewhere can make a browser post to 127.0.0.1:4100; it must not start or cancel runs."""
    server = app_server("dev", "127.0.0.1")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        refused = client.post("/api/workflows/build/runs", json={"input": {}}, headers=headers)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        assert client.post("/api/runs/01X/cancel", headers=headers).status_code == 403
        assert client.post("/api/workflows/build/runs", json={"input": {}}).status_code == 422  # the CLI


def test_the_cli_client_sends_the_configured_signing_key_as_bearer(app_server: AppServerFactory,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server = app_server("production", "0.0.0.0")  # sets INNGEST_SIGNING_KEY, as the supervisor does
    with AppClient(server.url) as client:
        assert client._http.headers["authorization"] != f"Bearer {SIGNING_KEY}", "the raw key never leaves"
        assert [w["id"] for w in client.get("/api/workflows")["data"]] == ["build"]
    monkeypatch.delenv("INNGEST_SIGNING_KEY")
    with AppClient(server.url) as client, pytest.raises(AuthError) as refused:
        client.get("/api/workflows")
    assert "no signing key is configured" in refused.value.what and "INNGEST_SIGNING_KEY" in (refused.value.fix or "")
