"""Auth on every app server route, over HTTP: a table of route x mode x bind.

Locked (production beyond loopback, or ``--dashboard-auth``): the JSON API
needs the signing key as bearer (in production even on loopback), the workflow views a dashboard-token login,
actions a session and a CSRF token. Open (loopback, or dev): as before, with
CSRF on actions. ``/health``, the static files and the SDK endpoint are
always open (the SDK checks signatures itself in production).

"served" below means the request got past auth and the handler answered:
the status the handler gives (a 404 for an unknown run, a 422 for input the
schema refuses, so nothing is started).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.harness.appserver import TOKEN, AppServerFactory, Served, bearer

# name -> (mode, bind host, --dashboard-auth, locked?)
CONFIGS = {
    "dev loopback": ("dev", "127.0.0.1", False, False),
    "dev 0.0.0.0 (--allow-remote-dev)": ("dev", "0.0.0.0", False, False),
    "dev loopback --dashboard-auth": ("dev", "127.0.0.1", True, True),
    "production loopback": ("production", "127.0.0.1", False, False),
    "production loopback --dashboard-auth": ("production", "127.0.0.1", True, True),
    "production 0.0.0.0": ("production", "0.0.0.0", False, True),
}

# (method, path, JSON body, status when served)
API = [
    ("GET", "/api/workflows", None, 200),
    ("GET", "/api/workflows/build", None, 200),
    ("POST", "/api/workflows/build/runs", {"input": {}}, 422),  # "who" is required: nothing is sent
    ("GET", "/api/runs", None, 200),
    ("GET", "/api/runs/01NOSUCHRUN", None, 404),
    ("POST", "/api/runs/01NOSUCHRUN/cancel", None, 404),
    ("GET", "/api/runs/01NOSUCHRUN/stream", None, 404),
    ("GET", "/api/runs/01NOSUCHRUN/live", None, 404),
    ("POST", "/api/events", {"name": ""}, 422),
]
PAGES = [("/", 200), ("/workflows/build", 200), ("/runs/01NOSUCHRUN", 404), ("/runs/01NOSUCHRUN/artifacts/x", 404),
         ("/runs/01NOSUCHRUN/live", 404), ("/no/such/page", 404)]
TWINS = [("/index.json", 200), ("/?format=json", 200), ("/workflows/build.json", 200),
         ("/workflows/build?format=json", 200), ("/runs/01NOSUCHRUN.json", 404), ("/openapi.json", 200),
         ("/runs/01NOSUCHRUN/stream.json", 404)]
# (path, form, status when served with a valid CSRF token)
ACTIONS = [("/workflows/build/start", {"input": "{}"}, 422), ("/runs/01NOSUCHRUN/cancel", {}, 404)]
ALWAYS_OPEN = [("/health", 200), ("/_ui/static/dashboard.css", 200), ("/_ui/static/dashboard.js", 200)]


@pytest.fixture(params=list(CONFIGS))
def served(request: pytest.FixtureRequest, app_server: AppServerFactory) -> Iterator[tuple[Served, bool]]:
    mode, host, dashboard_auth, locked = CONFIGS[request.param]
    yield app_server(mode, host, dashboard_auth), locked


def csrf_of(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: httpx.Client, token: str = TOKEN) -> httpx.Response:
    return client.post("/login", data={"token": token, "next": "/"})


def call(client: httpx.Client, method: str, path: str, body: Any, headers: dict[str, str] | None = None
         ) -> httpx.Response:
    return client.request(method, path, json=body, headers=headers)


def test_the_json_api_needs_the_signing_key_as_bearer_when_locked(served: tuple[Served, bool]) -> None:
    """Locked, or production even on loopback (the API sends events and reads runs, as the engine's key does)."""
    server, locked = served
    api_locked = locked or server.auth.mode.value == "production"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for method, path, body, ok in API:
            anonymous = call(client, method, path, body)
            if api_locked:
                assert anonymous.status_code == 401, (method, path, anonymous.text)
                assert anonymous.json()["code"] == "unauthorized" and "Bearer" in anonymous.json()["hint"]
                assert anonymous.headers["www-authenticate"].startswith("Bearer")
                wrong = call(client, method, path, body, {"Authorization": "Bearer " + "0" * 64})
                assert wrong.status_code == 401, (method, path)
                session = httpx.Client(base_url=server.url, timeout=30)
                assert login(session).status_code == 303
                assert call(session, method, path, body).status_code == 401, "a session cookie is not a bearer"
                session.close()
            else:
                assert anonymous.status_code == ok, (method, path, anonymous.text)
            for raw in (False, True):  # the SDK's hashed form (what the CLI sends) and the raw key
                assert call(client, method, path, body, bearer(raw)).status_code == ok, (method, path, raw)


def test_views_and_their_twins_need_a_login_when_locked(served: tuple[Served, bool]) -> None:
    server, locked = served
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for path, ok in PAGES:
            response = anonymous.get(path)
            if locked:
                assert response.status_code == 303, path
                assert response.headers["location"].startswith("/login?next="), path
            else:
                assert response.status_code == ok, path
        for path, ok in TWINS:
            response = anonymous.get(path)
            assert response.status_code == (401 if locked else ok), path
            if locked:
                assert response.json()["code"] == "unauthorized"
        assert anonymous.get("/", headers=bearer()).status_code == (303 if locked else 200), \
            "the views take a login, not the API bearer"
    if locked:
        with httpx.Client(base_url=server.url, timeout=30) as user:
            assert login(user).status_code == 303
            for path, ok in PAGES + TWINS:
                assert user.get(path).status_code == ok, path


def test_actions_need_a_session_when_locked_and_a_csrf_token_always(served: tuple[Served, bool]) -> None:
    server, locked = served
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path, form, _ in ACTIONS:
            refused = client.post(path, data=form)
            assert refused.status_code == (401 if locked else 403), path
        if locked:
            assert login(client).status_code == 303
        token = csrf_of(client, "/workflows/build")
        for path, form, ok in ACTIONS:
            assert client.post(path, data=form).status_code == 403, f"{path} without a CSRF token"
            assert client.post(path, data={**form, "csrf_token": "0" * 64}).status_code == 403, path
            assert client.post(path, data={**form, "csrf_token": token}).status_code == ok, path


def test_health_static_files_and_the_sdk_endpoint_are_always_open(served: tuple[Served, bool]) -> None:
    server, locked = served
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for path, ok in ALWAYS_OPEN:
            assert anonymous.get(path).status_code == ok, path
        assert anonymous.get("/login").status_code == (200 if locked else 303)
        sdk = anonymous.get("/api/workflows/inngest")
        assert sdk.headers.get("x-inngest-sdk-handled") == "true", "the SDK answers, not the guard"
        # In production the SDK itself refuses an unsigned request; in dev it describes the app.
        assert sdk.status_code == (401 if server.auth.mode == "production" else 200), sdk.text


def test_health_shows_where_the_project_lives_only_to_those_who_may_look(served: tuple[Served, bool]) -> None:
    server, locked = served
    anonymous = httpx.get(f"{server.url}/health", timeout=10).json()
    assert anonymous["status"] == "ok" and anonymous["functions"] == 1
    assert ("project_dir" in anonymous) is (not locked)
    assert "project_dir" in httpx.get(f"{server.url}/health", headers=bearer(), timeout=10).json()


def test_a_wildcard_bind_is_locked_even_for_a_client_on_loopback(app_server: AppServerFactory) -> None:
    server = app_server("production", "0.0.0.0")
    assert server.bind == "0.0.0.0" and server.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{server.url}/api/workflows", timeout=10).status_code == 401
    assert httpx.get(f"{server.url}/api/workflows", headers=bearer(), timeout=10).status_code == 200
