"""The launch plan: which command lines and environments each engine and mode get."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.supervisor.conftest import install_executable

from agentcmd.config import load_settings
from agentcmd.config.keys import generate_event_key, generate_signing_key
from agentcmd.errors import ConfigError, UnavailableError
from agentcmd.mode import Mode
from agentcmd.supervisor.launch import DB_FILE_NAMES, INNGEST_CLI_VERSION, build_plan, connect_host

FAKE = Path(__file__).with_name("fake_inngest.py")
EVENT_KEY, SIGNING_KEY = generate_event_key(), generate_signing_key()
SDK = "http://127.0.0.1:4100/api/workflows/inngest"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNGEST_EVENT_KEY", EVENT_KEY)
    monkeypatch.setenv("INNGEST_SIGNING_KEY", SIGNING_KEY)


def path_with(tmp_path: Path, *names: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        install_executable(bin_dir, name, FAKE)
    return str(bin_dir)


def test_embedded_production_engine_gets_sqlite_dir_and_keys_by_pipe_only(keys: None) -> None:
    settings = load_settings()
    plan = build_plan(settings, Mode.PRODUCTION, {"PATH": "/nowhere"})
    assert plan.engine is not None
    assert plan.engine.argv == [sys.executable, "-m", "agentcmd", "engine", "start", "--host", "127.0.0.1",
                                "--port", "8288", "--sqlite-dir", str(settings.resolved_sqlite_dir),
                                "--sdk-url", SDK, "--passive-sync", "--no-connect"]
    assert settings.resolved_sqlite_dir.is_dir()
    for spec in (plan.engine, plan.app):
        # Handed over through a pipe (agentcmd.handover): not in argv, not in the environment, not in a repr.
        assert spec.secrets == {"INNGEST_EVENT_KEY": EVENT_KEY, "INNGEST_SIGNING_KEY": SIGNING_KEY}
        assert not any(SIGNING_KEY in value or EVENT_KEY in value for value in spec.env.values())
        assert not any(SIGNING_KEY in arg or EVENT_KEY in arg for arg in spec.argv)
        assert SIGNING_KEY not in repr(spec)
    assert plan.app.env["INNGEST_SERVE_ORIGIN"] == "http://127.0.0.1:4100"
    assert plan.app.env["INNGEST_SERVE_PATH"] == "/api/workflows/inngest"
    assert "INNGEST_DEV" not in plan.app.env and plan.app.env["INNGEST_BASE_URL"] == "http://127.0.0.1:8288"
    assert "persistent mode" in plan.engine_banner()
    assert f"database: {settings.resolved_sqlite_dir / 'engine.db'}" in plan.engine_banner()


def test_the_banner_names_the_file_the_embedded_engine_really_uses() -> None:
    from agentcmd.engine.store import DB_FILE_NAME

    assert DB_FILE_NAMES["embedded"] == DB_FILE_NAME


def test_embedded_dev_engine_gets_the_app_url_and_no_keys(keys: None) -> None:
    plan = build_plan(load_settings(port=5000, engine_port=5001), Mode.DEV, {"PATH": "/nowhere"})
    assert plan.engine is not None
    assert plan.engine.argv[-10:] == ["dev", "--host", "127.0.0.1", "--port", "5001", "-u",
                                      "http://127.0.0.1:5000/api/workflows/inngest", "--no-discovery",
                                      "--passive-sync", "--no-connect"]
    assert "INNGEST_SIGNING_KEY" not in plan.engine.env and "INNGEST_SIGNING_KEY" not in plan.app.env
    assert plan.app.env["INNGEST_DEV"] == "1"
    assert "ephemeral: history is lost on restart" in plan.engine_banner()


def test_engine_command_override_replaces_python_m_agentcmd_engine() -> None:
    plan = build_plan(load_settings(), Mode.DEV, {"AGENTCMD_ENGINE_COMMAND": "/opt/my engine --flag"})
    assert plan.engine is not None and plan.engine.argv[:3] == ["/opt/my", "engine", "--flag"]
    assert plan.engine.argv[3] == "dev"


def test_inngest_cli_prefers_the_binary_on_path(tmp_path: Path, keys: None) -> None:
    bin_dir = path_with(tmp_path, "inngest", "npx")
    plan = build_plan(load_settings(engine="inngest-cli"), Mode.PRODUCTION, {"PATH": bin_dir})
    assert plan.engine is not None and not plan.uses_npx
    assert plan.engine.argv[:6] == [f"{bin_dir}/inngest", "start", "--port", "8288", "--sdk-url", SDK]


def test_inngest_cli_falls_back_to_a_pinned_npx_package(tmp_path: Path) -> None:
    bin_dir = path_with(tmp_path, "npx")
    plan = build_plan(load_settings(engine="inngest-cli"), Mode.DEV, {"PATH": bin_dir})
    assert plan.engine is not None and plan.uses_npx
    assert plan.engine.argv[:6] == [f"{bin_dir}/npx", "--yes", f"inngest-cli@{INNGEST_CLI_VERSION}",
                                    "dev", "-u", SDK]
    assert "--no-discovery" in plan.engine.argv


def test_inngest_cli_missing_says_how_to_install_it_or_use_the_embedded_engine(tmp_path: Path) -> None:
    with pytest.raises(UnavailableError) as info:
        build_plan(load_settings(engine="inngest-cli"), Mode.DEV, {"PATH": str(tmp_path)})
    assert "npm install -g inngest-cli@" in (info.value.fix or "") and "--engine embedded" in (info.value.fix or "")


def test_external_engine_needs_a_url_and_starts_no_engine() -> None:
    with pytest.raises(ConfigError, match="--engine external"):
        build_plan(load_settings(engine="external"), Mode.DEV, {})
    plan = build_plan(load_settings(engine="external", engine_url="http://10.0.0.5:9000/"), Mode.DEV, {})
    assert plan.engine is None and plan.app.env["INNGEST_BASE_URL"] == "http://10.0.0.5:9000"
    assert "external Inngest server at http://10.0.0.5:9000" in plan.engine_banner()


def test_app_and_engine_cannot_share_a_port() -> None:
    with pytest.raises(ConfigError, match="share port 5000"):
        build_plan(load_settings(port=5000, engine_port=5000), Mode.DEV, {})


@pytest.mark.parametrize(("host", "reach"), [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"),
                                             ("::", "[::1]"), ("::1", "[::1]"), ("myhost", "myhost")])
def test_wildcard_hosts_are_reached_on_loopback(host: str, reach: str) -> None:
    assert connect_host(host) == reach


def test_allow_remote_dev_reaches_the_embedded_dev_engine_only() -> None:
    settings = load_settings(host="0.0.0.0")
    dev = build_plan(settings, Mode.DEV, {}, allow_remote_dev=True)
    assert dev.engine is not None and dev.engine.argv[-2:] == ["--allow-remote-dev", "--no-connect"]
    assert dev.app_url == "http://127.0.0.1:4100"
    prod = build_plan(settings, Mode.PRODUCTION, {}, allow_remote_dev=True)
    assert prod.engine is not None and "--allow-remote-dev" not in prod.engine.argv



def test_the_app_server_command_line_is_the_contract_one() -> None:
    plan = build_plan(load_settings(project_dir=Path("/srv/project")), Mode.DEV, {})
    assert plan.app.argv == [sys.executable, "-m", "agentcmd.server", "--host", "127.0.0.1", "--port", "4100",
                             "--project", "/srv/project"]
