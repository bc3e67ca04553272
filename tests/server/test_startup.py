"""Starting the app server: refusals before binding, and ``agentcmd start --host 0.0.0.0`` end to end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest
from tests.harness.appserver import EVENT_KEY, SIGNING_KEY
from tests.harness.processes import Child, clean_env, free_port, run_cli
from tests.polling import wait_for

from agentcmd.config import load_settings
from agentcmd.config.keys import hash_signing_key


def _server(*args: str, env: dict[str, str]) -> tuple[int, str]:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "agentcmd.server", "--port", str(free_port()), *args],
                         capture_output=True, text=True, env=env, timeout=60)
    return out.returncode, out.stderr


def test_a_dev_app_server_refuses_a_remote_bind_without_allow_remote_dev(agentcmd_home: Path) -> None:
    env = {**clean_env(agentcmd_home), "INNGEST_DEV": "1"}
    code, err = _server("--host", "0.0.0.0", env=env)
    assert code == 2, err
    assert "error: refusing to bind the dev app server to 0.0.0.0" in err
    assert "fix:" in err and "--allow-remote-dev" in err and "Traceback" not in err


def test_a_remote_production_app_server_without_a_dashboard_token_says_to_run_install(agentcmd_home: Path) -> None:
    env = {**clean_env(agentcmd_home), "INNGEST_SIGNING_KEY": SIGNING_KEY, "INNGEST_EVENT_KEY": EVENT_KEY}
    code, err = _server("--host", "0.0.0.0", env=env)
    assert code == 2, err
    assert "no dashboard token is configured" in err and "agentcmd install" in err and "Traceback" not in err
    assert SIGNING_KEY not in err


def test_agentcmd_dev_refuses_a_remote_host_before_starting_anything(agentcmd_home: Path) -> None:
    out = run_cli("dev", "--host", "0.0.0.0", "--port", str(free_port()), "--engine-port", str(free_port()),
                  env=clean_env(agentcmd_home), timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "refusing to bind the dev app server to 0.0.0.0" in out.stderr and "--allow-remote-dev" in out.stderr
    assert "Starting" not in out.stdout + out.stderr


def test_agentcmd_start_on_a_remote_host_without_a_token_refuses_with_the_fix(agentcmd_home: Path) -> None:
    env = {**clean_env(agentcmd_home), "INNGEST_SIGNING_KEY": SIGNING_KEY, "INNGEST_EVENT_KEY": EVENT_KEY}
    out = run_cli("start", "--host", "0.0.0.0", "--port", str(free_port()), "--engine-port", str(free_port()),
                  env=env, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "no dashboard token is configured" in out.stderr and "agentcmd install" in out.stderr


@pytest.mark.slow  # the supervisor, a production engine and the app server as real processes
def test_agentcmd_start_on_0000_protects_the_app_api_and_the_cli_still_works(agentcmd_home: Path,
                                                                              project: Path) -> None:
    assert run_cli("install", env=clean_env(agentcmd_home)).returncode == 0
    key = load_settings().secret("signing_key")
    assert key
    port, engine_port = free_port(), free_port()
    env = {**clean_env(agentcmd_home), "PORT": str(port)}
    sup = Child([sys.executable, "-m", "agentcmd", "start", "--host", "0.0.0.0", "--port", str(port),
                 "--engine-port", str(engine_port), "--project", str(project), "--log-format", "plain"],
                env, agentcmd_home.parent / "start.log")
    app = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: sup.proc.poll() is not None or "ready in" in sup.output(), 90, "agentcmd start", sup.output)
        assert sup.proc.poll() is None, sup.output()
        assert httpx.get(f"{app}/health", timeout=10).status_code == 200
        anonymous = httpx.get(f"{app}/api/workflows", timeout=10)
        assert anonymous.status_code == 401, anonymous.text
        auth = {"Authorization": f"Bearer {hash_signing_key(key)}"}
        listed = httpx.get(f"{app}/api/workflows", headers=auth, timeout=10)
        assert listed.status_code == 200 and [w["id"] for w in listed.json()["data"]] == ["build"]
        assert httpx.get(f"{app}/", timeout=10).headers.get("location", "").startswith("/login")
        cli = run_cli("workflows", "list", "--json", env=env, timeout=60)  # the CLI sends the bearer itself
        assert cli.returncode == 0, cli.stderr
        assert '"build"' in cli.stdout
        runs = run_cli("runs", "list", "--json", env=env, timeout=60)
        assert runs.returncode == 0, runs.stderr
    finally:
        code = sup.stop()
    assert code == 0, sup.output()
    assert key not in sup.output() and os.environ.get("AGENTCMD_HOME") == str(agentcmd_home)


def test_the_supervisor_passes_the_auth_flags_to_the_app_server_and_the_embedded_engine() -> None:
    from agentcmd.mode import Mode
    from agentcmd.supervisor.launch import build_plan

    settings = load_settings(host="0.0.0.0")
    dev = build_plan(settings, Mode.DEV, {}, allow_remote_dev=True, dashboard_auth=True)
    assert dev.engine is not None and {"--dashboard-auth", "--allow-remote-dev"} <= set(dev.engine.argv)
    assert {"--dashboard-auth", "--allow-remote-dev"} <= set(dev.app.argv)
    prod = build_plan(settings, Mode.PRODUCTION, {}, allow_remote_dev=True)
    assert prod.engine is not None and "--dashboard-auth" not in prod.engine.argv
    assert "--allow-remote-dev" not in prod.app.argv and "--dashboard-auth" not in prod.app.argv
    assert prod.app.argv[prod.app.argv.index("--host") + 1] == "0.0.0.0"
