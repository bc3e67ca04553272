"""The issue's "done when", on ``python -m agentcmd engine dev|start`` subprocesses.

``GET /`` says "persistent" under ``engine start`` and "ephemeral" under
``engine dev``; ``engine start --host 0.0.0.0`` asks for a login and answers
``/v1/runs/<id>`` without a bearer with 401; a dev engine refuses a
non-loopback bind unless ``--allow-remote-dev`` (then it warns); a remote
production engine without a dashboard token refuses to start.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from tests.harness.processes import Child, clean_env, free_port, run_cli
from tests.polling import wait_for

from agentcmd.config.keys import generate_event_key, generate_signing_key

pytestmark = pytest.mark.slow  # real engine (and app server) subprocesses


def _prod_env(tmp_path: Path, token: str | None = "cli-test-token") -> dict[str, str]:
    env = {**clean_env(tmp_path / "home"), "INNGEST_SIGNING_KEY": generate_signing_key(),
           "INNGEST_EVENT_KEY": generate_event_key()}
    if token:
        env["AGENTCMD_DASHBOARD_TOKEN"] = token
    return env


def _serve(tmp_path: Path, args: list[str], env: dict[str, str]) -> tuple[Child, str]:
    port = free_port()
    child = Child([sys.executable, "-m", "agentcmd", "engine", *args, "--port", str(port)], env,
                  tmp_path / f"engine-{port}.log")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/health", timeout=5).status_code == 200, 30, "the engine", child.output,
             (child,))
    return child, url


def test_engine_start_says_persistent_with_its_database(tmp_path: Path) -> None:
    child, url = _serve(tmp_path, ["start", "--sqlite-dir", str(tmp_path / "db")], _prod_env(tmp_path, None))
    try:
        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 200  # loopback, no --dashboard-auth: open
        assert f"persistent: history is kept in {tmp_path / 'db' / 'engine.db'}" in page.text
    finally:
        child.stop()


def test_engine_dev_says_ephemeral(tmp_path: Path) -> None:
    child, url = _serve(tmp_path, ["dev", "--no-discovery"], clean_env(tmp_path / "home"))
    try:
        assert "ephemeral: history is lost on restart" in httpx.get(f"{url}/", timeout=10).text
    finally:
        child.stop()


def test_engine_start_on_all_interfaces_needs_a_login_and_a_bearer(tmp_path: Path) -> None:
    child, url = _serve(tmp_path, ["start", "--host", "0.0.0.0", "--sqlite-dir", str(tmp_path / "db")],
                        _prod_env(tmp_path))
    try:
        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/"
        assert httpx.get(f"{url}/v1/runs/01ANYRUN", timeout=10).status_code == 401
        assert httpx.get(f"{url}/runs.json", timeout=10).status_code == 401
    finally:
        child.stop()


def test_dashboard_auth_asks_for_a_login_on_loopback_too(tmp_path: Path) -> None:
    child, url = _serve(tmp_path, ["start", "--dashboard-auth", "--sqlite-dir", str(tmp_path / "db")],
                        _prod_env(tmp_path))
    try:
        assert httpx.get(f"{url}/runs", timeout=10).status_code == 303
    finally:
        child.stop()


def test_dev_refuses_a_remote_bind_without_allow_remote_dev(tmp_path: Path) -> None:
    out = run_cli("engine", "dev", "--host", "0.0.0.0", "--port", str(free_port()), "--no-discovery",
                  env=clean_env(tmp_path / "home"), timeout=60)
    assert out.returncode == 2
    assert "error: refusing to bind the dev engine to 0.0.0.0" in out.stderr
    assert "--allow-remote-dev" in out.stderr and "Traceback" not in out.stderr


def test_dev_with_allow_remote_dev_warns_and_serves(tmp_path: Path) -> None:
    child, url = _serve(tmp_path, ["dev", "--host", "0.0.0.0", "--allow-remote-dev", "--no-discovery"],
                        clean_env(tmp_path / "home"))
    try:
        assert httpx.get(f"{url}/runs.json", timeout=10).status_code == 200
        assert "no authentication (--allow-remote-dev)" in child.output()
    finally:
        child.stop()


def test_a_remote_production_engine_without_a_dashboard_token_refuses_to_start(tmp_path: Path) -> None:
    env = _prod_env(tmp_path, None)
    out = run_cli("engine", "start", "--host", "0.0.0.0", "--port", str(free_port()), "--sqlite-dir",
                  str(tmp_path / "db"), env=env, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "no dashboard token is configured" in out.stderr
    assert "agentcmd install" in out.stderr and "Traceback" not in out.stderr
