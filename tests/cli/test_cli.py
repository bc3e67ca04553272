"""The CLI as a user meets it: real ``python -m agentcmd`` subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.harness.processes import run_cli

WEB_STACK = ("fastapi", "uvicorn", "starlette", "inngest", "aiohttp", "httpx", "celpy", "graphql", "jinja2")


def test_help_lists_every_command_group() -> None:
    out = run_cli("--help")
    assert out.returncode == 0, out.stderr
    for group in ("dev", "start", "engine", "install", "config", "workflows", "runs", "send"):
        assert f" {group} " in out.stdout


@pytest.mark.parametrize("args", [["--help"], ["config", "path"], ["config", "--show"]])
def test_help_and_config_do_not_import_the_web_stack(args: list[str]) -> None:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['agentcmd', *{args!r}]\n"
        "try:\n    runpy.run_module('agentcmd', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print('LOADED=' + ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({WEB_STACK!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert "LOADED=\n" in out.stdout, out.stdout


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("agentcmd ")


def test_install_writes_private_keys_and_config_show_masks_them(agentcmd_home: Path) -> None:
    out = run_cli("install")
    assert out.returncode == 0, out.stderr
    path = agentcmd_home / "config.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert agentcmd_home.stat().st_mode & 0o777 == 0o700
    data = json.loads(path.read_text())
    hexpart = data["signing_key"].removeprefix("signkey-prod-")
    assert len(hexpart) % 2 == 0 and int(hexpart, 16) >= 0
    shown = run_cli("config", "--show")
    assert shown.returncode == 0, shown.stderr
    for secret in (data["signing_key"], data["event_key"], data["dashboard_token"]):
        assert secret not in shown.stdout + out.stdout + out.stderr
    assert json.loads(shown.stdout)["signing_key"] == "signkey-prod-…" + data["signing_key"][-4:]


def test_install_keeps_keys_unless_rotated(agentcmd_home: Path) -> None:
    run_cli("install")
    first = json.loads((agentcmd_home / "config.json").read_text())
    again = run_cli("install")
    assert "kept" in again.stdout
    assert json.loads((agentcmd_home / "config.json").read_text()) == first
    run_cli("install", "--rotate-keys")
    assert json.loads((agentcmd_home / "config.json").read_text())["signing_key"] != first["signing_key"]


def test_config_set_get_and_path(agentcmd_home: Path) -> None:
    assert run_cli("config", "path").stdout.strip() == str(agentcmd_home / "config.json")
    assert run_cli("config", "set", "engine_port", "9100").returncode == 0
    assert run_cli("config", "get", "engine_port").stdout.strip() == "9100"
    assert (agentcmd_home / "config.json").stat().st_mode & 0o777 == 0o600
    bad = run_cli("config", "set", "engine_port", "99999")
    assert bad.returncode == 2 and "engine_port" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run_cli("config", "get", "nope")
    assert unknown.returncode == 2 and "unknown setting" in unknown.stderr


def test_config_set_refuses_a_non_hex_signing_key(agentcmd_home: Path) -> None:
    out = run_cli("config", "set", "signing_key", "local-prod-signing")
    assert out.returncode == 2 and "hex" in out.stderr
    assert not (agentcmd_home / "config.json").exists()


@pytest.mark.parametrize("command", [["start"], ["dev"], ["engine", "start"], ["engine", "dev"]])
def test_a_non_hex_signing_key_stops_every_engine_command(command: list[str]) -> None:
    started = time.monotonic()
    out = run_cli(*command, env={"INNGEST_SIGNING_KEY": "local-prod-signing"}, timeout=30)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "hex" in out.stderr and "agentcmd install" in out.stderr
    assert "Traceback" not in out.stderr and "local-prod-signing" not in out.stderr
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("command", [["start"], ["engine", "start"]])
@pytest.mark.parametrize(("env", "expected"), [
    ({"INNGEST_SIGNING_KEY": "signkey-prod-00"}, "signing key (INNGEST_SIGNING_KEY, --signing-key or config.json) "
                                                 "is too weak: it is too short"),
    ({"INNGEST_EVENT_KEY": "a"}, "event key (INNGEST_EVENT_KEY, --event-key or config.json) is too weak"),
])
def test_a_weak_key_stops_the_production_commands_with_the_minimum_and_the_fix(
        command: list[str], env: dict[str, str], expected: str) -> None:
    out = run_cli(*command, env=env, timeout=30)
    assert out.returncode == 2, out.stdout + out.stderr
    assert expected in out.stderr and "the minimum is 32" in out.stderr
    assert "fix:" in out.stderr and "agentcmd install" in out.stderr and "Traceback" not in out.stderr


def test_install_replaces_a_weak_key_it_finds_in_the_config_file(agentcmd_home: Path) -> None:
    agentcmd_home.mkdir(parents=True)
    (agentcmd_home / "config.json").write_text(json.dumps({"signing_key": "signkey-prod-00", "event_key": "a"}))
    os.chmod(agentcmd_home / "config.json", 0o600)
    assert run_cli("install").returncode == 0
    data = json.loads((agentcmd_home / "config.json").read_text())
    assert len(data["signing_key"]) == len("signkey-prod-") + 64 and len(data["event_key"]) == 64


def test_invalid_config_file_is_named_without_a_traceback(agentcmd_home: Path) -> None:
    agentcmd_home.mkdir(parents=True)
    (agentcmd_home / "config.json").write_text('{"port": ')
    os.chmod(agentcmd_home / "config.json", 0o600)
    out = run_cli("config", "--show")
    assert out.returncode == 2
    assert str(agentcmd_home / "config.json") in out.stderr and "Traceback" not in out.stderr


def test_unknown_node_env_is_not_an_error_for_config() -> None:
    out = run_cli("config", "get", "node_env", env={"NODE_ENV": "staging"})
    assert out.returncode == 0 and out.stdout.strip() == "staging"
