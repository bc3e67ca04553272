"""``--worker-mode connect`` in the launch plan: the engine is not told the app's URL, a worker child is added."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.supervisor.conftest import install_executable

from agentcmd.config import load_settings
from agentcmd.config.keys import generate_event_key, generate_signing_key
from agentcmd.mode import Mode
from agentcmd.server.connectmode import READY_LINE, WAITING_LINE
from agentcmd.supervisor import workermode
from agentcmd.supervisor.launch import build_plan

EVENT_KEY, SIGNING_KEY = generate_event_key(), generate_signing_key()
SDK = "http://127.0.0.1:4100/api/workflows/inngest"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNGEST_EVENT_KEY", EVENT_KEY)
    monkeypatch.setenv("INNGEST_SIGNING_KEY", SIGNING_KEY)


@pytest.mark.parametrize("mode", [Mode.DEV, Mode.PRODUCTION])
def test_connect_mode_adds_a_worker_and_never_names_the_app_to_the_engine(mode: Mode, keys: None) -> None:
    settings = load_settings(worker_mode="connect")
    plan = build_plan(settings, mode, {"PATH": "/nowhere"})
    assert plan.engine is not None and plan.worker is not None
    assert SDK not in plan.engine.argv and "--passive-sync" not in plan.engine.argv
    assert "-u" not in plan.engine.argv and "--sdk-url" not in plan.engine.argv
    flag = "--production" if mode is Mode.PRODUCTION else "--dev"
    assert plan.worker.argv == [sys.executable, "-m", "agentcmd", "worker", "--engine-url", "http://127.0.0.1:8288",
                                "--project", str(settings.resolved_project_dir), flag, "--stop-steps",
                                "--wait-for-workflows"]
    assert plan.worker.ready_lines == (READY_LINE, WAITING_LINE) and plan.worker.health_url is None
    # One life for the app server and its worker; the app server knows it must not sync itself.
    assert plan.app.env["AGENTCMD_WORKER_MODE"] == plan.worker.env["AGENTCMD_WORKER_MODE"] == "connect"
    assert plan.app.env["AGENTCMD_BOOT_ID"] == plan.worker.env["AGENTCMD_BOOT_ID"]
    assert "INNGEST_SERVE_ORIGIN" not in plan.worker.env
    assert ("INNGEST_DEV" in plan.worker.env) is (mode is Mode.DEV)
    # Keys by pipe, as the app's: never in argv or the environment.
    assert plan.worker.secrets == plan.app.secrets
    assert (plan.worker.secrets == {"INNGEST_EVENT_KEY": EVENT_KEY, "INNGEST_SIGNING_KEY": SIGNING_KEY}) \
        is (mode is Mode.PRODUCTION)
    assert not any(SIGNING_KEY in v for v in [*plan.worker.argv, *plan.worker.env.values()])


def test_http_mode_is_the_default_and_unchanged(keys: None) -> None:
    plan = build_plan(load_settings(), Mode.PRODUCTION, {"PATH": "/nowhere"})
    assert plan.worker is None
    assert plan.engine is not None and plan.engine.argv[-4:] == ["--sdk-url", SDK, "--passive-sync", "--no-connect"]
    assert plan.app.env["AGENTCMD_WORKER_MODE"] == "http" and "AGENTCMD_BOOT_ID" not in plan.app.env


def test_the_real_inngest_binary_gets_no_app_url_in_connect_mode(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    install_executable(bin_dir, "inngest", Path(__file__).with_name("fake_inngest.py"))
    plan = build_plan(load_settings(engine="inngest-cli", worker_mode="connect"), Mode.DEV, {"PATH": str(bin_dir)})
    assert plan.engine is not None and plan.worker is not None
    assert plan.engine.argv[1:] == ["dev", "--port", "8288", "--host", "127.0.0.1", "--no-discovery"]


def test_the_boot_id_variable_is_the_one_the_runtime_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentcmd.workflows.context import BOOT_ID_ENV, Runtime

    assert workermode.BOOT_ID_ENV == BOOT_ID_ENV
    monkeypatch.setenv(BOOT_ID_ENV, "shared-life")
    assert Runtime.from_settings().boot_id == "shared-life"
    monkeypatch.delenv(BOOT_ID_ENV)
    assert Runtime.from_settings().boot_id != "shared-life"


def test_a_bad_worker_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentcmd.errors import ConfigError

    monkeypatch.setenv("AGENTCMD_WORKER_MODE", "websocket")
    with pytest.raises(ConfigError, match="worker_mode"):
        load_settings()


def test_connect_mode_refuses_a_taken_gateway_port_before_starting_anything(project: Path) -> None:
    import socket

    from tests.harness.processes import free_ports, run_cli

    for _ in range(20):
        app_port, engine_port = free_ports(2)
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", engine_port + 1))
        except OSError:
            holder.close()
            continue
        break
    holder.listen()
    try:
        done = run_cli("dev", "--worker-mode", "connect", "--project", str(project), "--port", str(app_port),
                       "--engine-port", str(engine_port), "--log-format", "plain", timeout=60)
    finally:
        holder.close()
    assert done.returncode == 2, done.stderr
    assert f"port {engine_port + 1} on 127.0.0.1 (the engine's connect gateway" in done.stderr
    assert "AGENTCMD_ENGINE_CONNECT_PORT" in done.stderr and "started (pid" not in done.stdout + done.stderr
