"""The app server's workflow views against an attacker: artifact paths, logout, forwarded headers.

* ``GET /runs/%2E%2E/artifacts/<name>`` (the router decodes ``%2E%2E`` to
  ``..``) and every other way out of the artifacts directory answer 404;
* a logout revokes the session: a copy of the cookie is refused;
* the real launcher (``python -m agentcmd.server``) does not let a forged
  ``X-Forwarded-For`` reset the failed-login limit.
"""

from __future__ import annotations

import http.client
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.harness.appserver import EVENT_KEY, SIGNING_KEY, TOKEN, AppServerFactory
from tests.harness.processes import Child, clean_env, free_port
from tests.polling import wait_for

from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

RUN = "01JRUNAAAAAAAAAAAAAAAAAAAA"


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` byte for byte (no client-side normalisation of dots or escapes)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def data_dir(agentcmd_home: Path) -> Path:
    """The app's data directory (``$AGENTCMD_HOME/data``) with one artifact and secrets around it."""
    data = agentcmd_home / "data"
    (data / "artifacts" / RUN).mkdir(parents=True)
    (data / "artifacts" / RUN / "report.txt").write_text("build report: all green")
    (data / "secret.txt").write_text("TOP-SECRET-ONE-LEVEL-UP")
    (data / "artifacts" / "secret.txt").write_text("TOP-SECRET-IN-ARTIFACTS")
    outside = agentcmd_home / "outside.txt"
    outside.write_text("TOP-SECRET-OUTSIDE")
    (data / "artifacts" / RUN / "link.txt").symlink_to(outside)
    return data


def test_an_artifact_is_served(app_server: AppServerFactory, data_dir: Path) -> None:
    server = app_server()
    status, body = raw_get(server.url, f"/runs/{RUN}/artifacts/report.txt")
    assert status == 200 and body == b"build report: all green"


@pytest.mark.parametrize("path", [
    "/runs/%2E%2E/artifacts/secret.txt",
    "/runs/%2e%2e/artifacts/secret.txt",
    "/runs/../artifacts/secret.txt",
    "/runs/./artifacts/secret.txt",
    "/runs/%2E/artifacts/secret.txt",
    f"/runs/{RUN}/artifacts/%2E%2E",
    f"/runs/{RUN}/artifacts/..%2Fsecret.txt",
    f"/runs/{RUN}/artifacts/%2E%2E%2F%2E%2E%2Fsecret.txt",
    f"/runs/{RUN}%2F..%2F..%2F/artifacts/secret.txt",
    f"/runs/{RUN}/artifacts/%2Fetc%2Fpasswd",
    f"/runs/{RUN}/artifacts/..%5Csecret.txt",
    f"/runs/{RUN}/artifacts/report.txt%00",
    f"/runs/{RUN}/artifacts/link.txt",  # a symlink inside that points out
])
def test_no_path_leads_out_of_the_artifacts_directory(app_server: AppServerFactory, data_dir: Path,
                                                      path: str) -> None:
    server = app_server()
    status, body = raw_get(server.url, path)
    assert status in (400, 404), (path, status, body[:200])
    assert b"TOP-SECRET" not in body and b"root:" not in body


def test_logout_revokes_the_session_for_every_copy_of_the_cookie(app_server: AppServerFactory) -> None:
    server = app_server("production", "0.0.0.0")
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        ok = browser.post("/login", data={"token": TOKEN, "next": "/"})
        assert ok.status_code == 303
        copied = ok.cookies["agentcmd_session"]
        assert browser.post("/logout").status_code == 303
    with httpx.Client(base_url=server.url, timeout=30, cookies={"agentcmd_session": copied}) as thief:
        page = thief.get("/")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert thief.get("/index.json").status_code in (303, 401)


def test_the_real_launcher_does_not_let_forwarded_for_reset_the_login_limit(
        project: Path, engine_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**clean_env(tmp_path / "home"), "AGENTCMD_DASHBOARD_TOKEN": TOKEN,
           **inngest_env(Mode.PRODUCTION, engine_url, event_key=EVENT_KEY, signing_key=SIGNING_KEY, base={})}
    child = Child([sys.executable, "-m", "agentcmd.server", "--host", "127.0.0.1", "--port", str(port),
                   "--project", str(project), "--dashboard-auth", "--log-level", "warning"], env,
                  tmp_path / "app.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 30, "the app server", child.output)
        with httpx.Client(base_url=url, timeout=10) as guesser:
            statuses = [guesser.post("/login", data={"token": "guess"},
                                     headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(6)]
            assert statuses == [401] * 5 + [429]
    finally:
        child.stop()
