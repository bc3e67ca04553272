"""The app server's HTTP edge, served by uvicorn on an ephemeral loopback port next to a real dev engine.

Regressions: a rebinding ``Host`` reached the views and the API (finding 3),
the open loopback API let any local user around the engine's keys in
production (finding 3), ``/login`` and the SDK endpoint read 100 MB bodies
(finding 7), and the app API passed ``text/plain`` and ``NaN`` on (2, 9).
"""

from __future__ import annotations

import json

import httpx
import pytest
from tests.harness.appserver import AppServerFactory, bearer
from tests.httpedge.rawhttp import chunked, request

from agentcmd.server import SERVE_PATH

REBIND = "rebind.example:4711"


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.parametrize("mode", ["dev", "production"])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/"), ("GET", "/workflows/build"), ("GET", "/api/runs"), ("POST", "/api/events"),
    ("POST", "/workflows/build/start"), ("GET", "/login"), ("POST", SERVE_PATH), ("GET", "/health"),
    ("GET", "/metrics"),
])
def test_a_rebinding_host_gets_nothing(app_server: AppServerFactory, mode: str, method: str, path: str) -> None:
    server = app_server(mode)
    headers = {"Host": REBIND, "Origin": f"http://{REBIND}", "Sec-Fetch-Site": "same-origin",
               "Content-Type": "application/json", "Content-Length": "2", **bearer()}
    r = request(_port(server.url), method, path, headers, [b"{}"])
    assert r.status == 421, (r.head, r.body)
    assert json.loads(r.body)["code"] == "host_not_allowed"


def test_configured_names_and_the_serve_origin_are_answered(app_server: AppServerFactory,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCMD_ALLOWED_HOSTS", "agentcmd.lan")
    monkeypatch.setenv("INNGEST_SERVE_ORIGIN", "http://sdk.lan:4100")
    server = app_server("dev")
    for host in ("agentcmd.lan", "sdk.lan:4100", "localhost:1"):
        assert request(_port(server.url), "GET", "/health", {"Host": host}).status == 200, host
    assert request(_port(server.url), "GET", "/health", {"Host": "else.lan"}).status == 421


def test_the_dev_api_takes_json_only_and_refuses_pages_on_other_sites(app_server: AppServerFactory) -> None:
    server = app_server("dev")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        plain = client.post("/api/events", content=json.dumps({"name": "x/y"}), headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415 and plain.json()["code"] == "unsupported_media_type"
        sdk = client.post(SERVE_PATH + "?fnId=x&stepId=step", content="{}", headers={"Content-Type": "text/plain"})
        assert sdk.status_code == 415, "a page must not call the dev SDK endpoint (it runs steps)"
        foreign = client.post("/api/events", json={"name": "x/y"}, headers={"Origin": "http://localhost:3000"})
        assert foreign.status_code == 403


def test_the_production_api_needs_the_bearer_even_on_loopback(app_server: AppServerFactory) -> None:
    """The engine wants its event key for events and its bearer for runs; the app API must not be a way around."""
    server = app_server("production", "127.0.0.1")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for method, path, body in [("GET", "/api/runs", None), ("POST", "/api/events", {"name": "x/y"}),
                                   ("GET", "/api/workflows", None)]:
            r = client.request(method, path, json=body)
            assert r.status_code == 401, (path, r.text)
        assert client.get("/api/workflows", headers=bearer()).status_code == 200
        assert client.get("/").status_code == 200, "the loopback views stay open (CSRF on their forms)"


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_huge_bodies_are_refused_before_they_are_read(app_server: AppServerFactory, mode: str) -> None:
    server = app_server(mode)
    port = _port(server.url)
    for path in ("/login", SERVE_PATH, "/api/events", "/workflows/build/start"):
        announced = request(port, "POST", path, {"Host": "127.0.0.1", "Content-Length": str(100 << 20),
                                                 "Content-Type": "application/json", **bearer()}, timeout=5)
        assert announced.status == 413, (path, announced.head)
    streamed = request(port, "POST", "/login", {"Host": "127.0.0.1", "Transfer-Encoding": "chunked",
                                                "Content-Type": "application/x-www-form-urlencoded"},
                       chunked(20 << 20))
    assert streamed.status == 413


@pytest.mark.parametrize("mode", ["dev", "production"])
@pytest.mark.parametrize("body", [b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b'{"name": "x/y", "data": {"n": NaN}}',
                                  b"{nope"])
def test_malformed_bodies_are_400(app_server: AppServerFactory, mode: str, body: bytes) -> None:
    server = app_server(mode)
    headers = {"Content-Type": "application/json", **bearer()}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in ("/api/events", "/api/workflows/build/runs", SERVE_PATH + "?fnId=app-build&stepId=step"):
            r = client.post(path, content=body, headers=headers)
            # production: the SDK's signature check refuses the unsigned call first
            expected = 401 if mode == "production" and path.startswith(SERVE_PATH) else 400
            assert r.status_code == expected, (path, r.status_code, r.text)
