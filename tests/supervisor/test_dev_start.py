"""``agentcmd dev`` / ``agentcmd start`` end to end: real subprocesses, the real app server,
and a fake ``inngest`` binary on PATH (``--engine inngest-cli``) standing in for the engine."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.harness.processes import Spawned, free_port
from tests.polling import wait_for
from tests.supervisor.conftest import (
    HELLO_WORKFLOW,
    FakeInngest,
    assert_all_gone,
    child_pids,
    install_executable,
    wait_exit,
    wait_output,
)

from agentcmd.config.sources import read_config_file
from agentcmd.supervisor.launch import INNGEST_CLI_VERSION
from agentcmd.supervisor.process import http_get_status

SpawnFn = Callable[..., Spawned]

READY = "ready in "


def supervise(spawn: SpawnFn, fake: FakeInngest, ports: tuple[int, int], command: str, *args: str,
              engine: str = "inngest-cli", **env: str) -> Spawned:
    app_port, engine_port = ports
    project = fake.record.parent / "project"
    if not project.exists():
        (project / ".agentcmd" / "workflows").mkdir(parents=True)
        (project / ".agentcmd" / "workflows" / "hello.py").write_text(HELLO_WORKFLOW)
    return spawn(command, "--port", str(app_port), "--engine-port", str(engine_port), "--engine", engine,
                 "--project", str(project), "--stop-grace", "2", *args, env=fake.env(**env))


def sdk_url(ports: tuple[int, int]) -> str:
    return f"http://127.0.0.1:{ports[0]}/api/workflows/inngest"


def sdk_probe_status(ports: tuple[int, int]) -> int:
    """Status of an unsigned ``POST <sdk>?probe=trust``: 401 in production (cloud) mode, 200 in dev."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", ports[0], timeout=5)
    try:
        conn.request("POST", "/api/workflows/inngest?probe=trust", body=b"",
                     headers={"Content-Length": "0"})
        return conn.getresponse().status
    finally:
        conn.close()


def interrupt_and_check_clean_exit(child: Spawned, sig: int = signal.SIGINT) -> None:
    pids = list(child_pids(child.output()).values())
    assert len(pids) == 2, child.output()
    os.kill(child.proc.pid, sig)
    assert wait_exit(child) == 0, child.output()
    assert_all_gone(pids, timeout=3, output=child.output)


def test_first_start_on_a_fresh_home_generates_keys_and_runs_in_production(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int], agentcmd_home: Path) -> None:
    child = supervise(spawn, fake_inngest, ports, "start")
    out = wait_output(child, READY)
    assert "mode: production (from the default of 'agentcmd start')" in out
    config_file = agentcmd_home / "config.json"
    assert f"generated an event key and a signing key in {config_file} (mode 0600)" in out
    assert "Starting Inngest Server (persistent mode)" in out
    keys = read_config_file(config_file)

    [call, sync] = fake_inngest.records()
    assert call["argv"][:5] == ["start", "--port", str(ports[1]), "--sdk-url", sdk_url(ports)]
    # "ready" means the app registered its workflows with the engine, signed (production)
    assert sync["register"]["url"].startswith(sdk_url(ports)) and sync["register"]["auth"].startswith("Bearer ")
    assert "synced the app with the engine at" in out
    assert call["env"]["INNGEST_EVENT_KEY"] == keys["event_key"]
    assert call["env"]["INNGEST_SIGNING_KEY"] == keys["signing_key"]
    for pid in child_pids(out).values():  # keys never in argv (ps)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        assert keys["signing_key"] not in cmdline and keys["event_key"] not in cmdline
    assert keys["signing_key"] not in out and keys["event_key"] not in out

    # The app's SDK is in production ("cloud") mode: an unsigned trust probe is refused.
    assert sdk_probe_status(ports) == 401
    interrupt_and_check_clean_exit(child)
    assert "stopping app" in child.output().split("stopping engine")[1]  # the engine first


def test_dev_runs_inngest_dev_with_the_app_url_and_no_keys(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev")
    out = wait_output(child, READY)
    assert "mode: dev (from the default of 'agentcmd dev')" in out
    assert "Starting Inngest Dev Server" in out and "ephemeral: history is lost on restart" in out
    [call, _sync] = fake_inngest.records()
    assert call["argv"][:5] == ["dev", "-u", sdk_url(ports), "--port", str(ports[1])]
    assert "--no-discovery" in call["argv"]
    assert "INNGEST_SIGNING_KEY" not in call["env"] and "INNGEST_EVENT_KEY" not in call["env"]
    assert sdk_probe_status(ports) == 200  # dev: the SDK answers unsigned requests
    interrupt_and_check_clean_exit(child, signal.SIGTERM)


@pytest.mark.parametrize(("command", "flags", "node_env", "expected"), [
    ("start", [], "development", "dev (from NODE_ENV=development)"),
    ("dev", [], "production", "production (from NODE_ENV=production)"),
    ("dev", ["--production"], "development", "production (from --production)"),
    ("start", ["--dev"], "production", "dev (from --dev)"),
])
def test_mode_priority_flag_then_node_env_then_the_command_default(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int],
        command: str, flags: list[str], node_env: str, expected: str) -> None:
    child = supervise(spawn, fake_inngest, ports, command, *flags, NODE_ENV=node_env)
    out = wait_output(child, READY)
    assert f"mode: {expected}" in out
    call = fake_inngest.records()[0]
    assert call["argv"][0] == ("start" if expected.startswith("production") else "dev")
    interrupt_and_check_clean_exit(child)


def test_production_and_dev_flags_together_are_refused(spawn: SpawnFn, fake_inngest: FakeInngest,
                                                       ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "start", "--dev", "--production")
    assert wait_exit(child) == 2
    assert "contradict" in child.output() and fake_inngest.records() == []


def test_sigkill_of_the_supervisor_leaves_no_child_behind(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev")
    pids = list(child_pids(wait_output(child, READY)).values())
    child.proc.kill()
    child.proc.wait(5)
    assert_all_gone(pids, timeout=5, output=child.output)


def test_sigkill_of_the_supervisor_kills_even_a_child_that_ignores_sigterm(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    """The parent-death signal is SIGTERM; the watchdog escalates to SIGKILL after the grace period."""
    child = supervise(spawn, fake_inngest, ports, "dev", FAKE_INNGEST_IGNORE_TERM="1")
    pids = child_pids(wait_output(child, READY))
    child.proc.kill()
    child.proc.wait(5)
    assert_all_gone(list(pids.values()), timeout=8, output=child.output)
    assert "watchdog: the supervisor is gone" in child.output()


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period_on_shutdown(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev", FAKE_INNGEST_IGNORE_TERM="1")
    pids = list(child_pids(wait_output(child, READY)).values())
    os.kill(child.proc.pid, signal.SIGINT)
    assert wait_exit(child) == 0
    assert "engine (pid" in child.output() and "sending SIGKILL after not stopping within 2 s" in child.output()
    assert_all_gone(pids, timeout=3)


def test_a_second_ctrl_c_skips_the_rest_of_the_grace_period(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev", "--stop-grace", "60", FAKE_INNGEST_IGNORE_TERM="1")
    pids = list(child_pids(wait_output(child, READY)).values())
    os.kill(child.proc.pid, signal.SIGINT)
    wait_output(child, "stopping engine")
    os.kill(child.proc.pid, signal.SIGINT)
    assert wait_exit(child, timeout=10) == 0
    assert "sending SIGKILL after a second signal" in child.output()
    assert_all_gone(pids, timeout=3)


def test_an_engine_dying_while_running_stops_the_app_and_exits_non_zero(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev")
    pids = list(child_pids(wait_output(child, READY)).values())
    assert http_get_status(f"http://127.0.0.1:{ports[1]}/crash") is None
    assert wait_exit(child) == 1
    out = child.output()
    assert "the engine exited with code 3 while running" in out and "stopping app" in out
    assert "error: the engine exited with code 3 while running; stopped the app" in out
    assert_all_gone(pids, timeout=3)


def test_an_engine_failing_at_startup_is_reported_with_its_output_and_exit_code(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "start", FAKE_INNGEST_EXIT="3",
                      FAKE_INNGEST_MESSAGE="error: database is locked by another engine (pid 42)")
    assert wait_exit(child) == 3
    out = child.output()
    assert "engine │ error: database is locked by another engine (pid 42)" in out
    assert "the engine exited with code 3 during startup" in out
    assert "last lines of the engine's output" in out
    assert_all_gone(list(child_pids(out).values()), timeout=3)


@pytest.mark.parametrize(("which", "role", "flag"), [(0, "app server", "--port"), (1, "engine", "--engine-port")])
def test_a_port_in_use_is_refused_before_anything_starts(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int], which: int, role: str, flag: str) -> None:
    busy_port = ports[which]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", busy_port))
        busy.listen()
        child = supervise(spawn, fake_inngest, ports, "dev")
        assert wait_exit(child) == 2
    out = child.output()
    assert f"error: port {busy_port} on 127.0.0.1 (the {role} port) is already in use by pid {os.getpid()}" in out
    assert f"choose another port with '{flag} " in out
    assert fake_inngest.records() == [] and child_pids(out) == {}


def test_a_non_hex_signing_key_is_refused_before_anything_starts(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "start", INNGEST_SIGNING_KEY="local-prod-signing")
    assert wait_exit(child) == 2
    assert "hex" in child.output() and "Traceback" not in child.output()
    assert fake_inngest.records() == []


def test_inngest_cli_missing_is_a_clear_error(spawn: SpawnFn, fake_inngest: FakeInngest,
                                              ports: tuple[int, int], tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    child = supervise(spawn, fake_inngest, ports, "dev", PATH=str(empty))
    assert wait_exit(child) == 2
    out = child.output()
    assert "neither 'inngest' nor 'npx' is on PATH" in out and "--engine embedded" in out


def test_an_engine_command_that_cannot_run_is_a_clear_error(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int], tmp_path: Path) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev", engine="embedded",
                      AGENTCMD_ENGINE_COMMAND=str(tmp_path / "no-such-engine"))
    assert wait_exit(child) == 2
    out = child.output()
    assert "error: cannot start the engine" in out and "AGENTCMD_ENGINE_COMMAND" in out
    assert "Traceback" not in out


def test_sighup_stops_both_children_like_ctrl_c(spawn: SpawnFn, fake_inngest: FakeInngest,
                                                ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev")
    wait_output(child, READY)
    interrupt_and_check_clean_exit(child, signal.SIGHUP)


def test_inngest_cli_through_npx_when_only_node_is_there(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int], tmp_path: Path) -> None:
    npx_dir = tmp_path / "npx-bin"
    install_executable(npx_dir, "npx", fake_inngest.script)
    child = supervise(spawn, fake_inngest, ports, "start", PATH=f"{npx_dir}{os.pathsep}/usr/bin:/bin")
    wait_output(child, READY)
    call = fake_inngest.records()[0]
    assert call["argv"][:4] == ["--yes", f"inngest-cli@{INNGEST_CLI_VERSION}", "start", "--port"]
    assert "INNGEST_SIGNING_KEY" in call["env"]
    interrupt_and_check_clean_exit(child)


def test_ctrl_c_during_startup_stops_everything(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev", FAKE_INNGEST_UNHEALTHY="1")
    out = wait_output(child, "app started")
    os.kill(child.proc.pid, signal.SIGINT)
    assert wait_exit(child) == 130
    assert "interrupted by SIGINT during startup" in child.output()
    assert_all_gone(list(child_pids(out).values()), timeout=3)


def test_a_child_that_never_gets_healthy_times_out(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev", "--startup-timeout", "1.5",
                      FAKE_INNGEST_UNHEALTHY="1")
    assert wait_exit(child) == 1
    out = child.output()
    assert f"the engine did not answer GET http://127.0.0.1:{ports[1]}/health with 200 within 1.5 s" in out
    assert "--startup-timeout" in out
    assert_all_gone(list(child_pids(out).values()), timeout=3)


def test_an_unreachable_external_engine_is_refused(spawn: SpawnFn, fake_inngest: FakeInngest,
                                                   ports: tuple[int, int]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    child = supervise(spawn, fake_inngest, ports, "dev", "--engine-url", nowhere, engine="external")
    assert wait_exit(child) == 2
    assert f"cannot reach the external engine at {nowhere}" in child.output()
    assert child_pids(child.output()) == {}


def test_production_with_an_external_engine_needs_its_keys(spawn: SpawnFn, fake_inngest: FakeInngest,
                                                           ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "start", "--engine-url", "http://127.0.0.1:1",
                      engine="external")
    assert wait_exit(child) == 2
    assert "INNGEST_SIGNING_KEY" in child.output()


def test_external_engine_runs_only_the_app_and_syncs_it_there(
        spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int], project: Path) -> None:
    engine_port = ports[1]
    engine = subprocess.Popen([sys.executable, str(fake_inngest.script), "dev", "--port", str(engine_port)],
                              env={**os.environ, "FAKE_INNGEST_RECORD": str(fake_inngest.record)},
                              stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: http_get_status(f"http://127.0.0.1:{engine_port}/health") == 200, 10, "fake engine")
        child = spawn("dev", "--port", str(ports[0]), "--engine", "external", "--project", str(project),
                      "--engine-url", f"http://127.0.0.1:{engine_port}", env=fake_inngest.env())
        out = wait_output(child, "synced the app with the external engine at")
        assert "Using the external Inngest server" in out and list(child_pids(out)) == ["app"]
        registered = [r["register"] for r in fake_inngest.records() if "register" in r]
        assert registered and registered[0]["url"].startswith(sdk_url(ports))
        interrupt = child_pids(out)["app"]
        os.kill(child.proc.pid, signal.SIGINT)
        assert wait_exit(child) == 0
        assert_all_gone([interrupt], timeout=3)
    finally:
        engine.terminate()
        engine.wait(5)


def test_json_log_format_is_one_object_per_line(spawn: SpawnFn, fake_inngest: FakeInngest,
                                                ports: tuple[int, int]) -> None:
    child = supervise(spawn, fake_inngest, ports, "dev", "--log-format", "json")
    wait_output(child, '"ready_seconds"')
    interrupt_and_check_clean_exit_json(child)
    records: list[dict[str, Any]] = [json.loads(line) for line in child.output().splitlines()]
    sources = {r["source"] for r in records}
    assert {"agentcmd", "engine", "app"} <= sources
    assert any(r.get("mode") == "dev" for r in records)


def interrupt_and_check_clean_exit_json(child: Spawned) -> None:
    pids = [r["pid"] for r in map(json.loads, child.output().splitlines()) if "pid" in r and r.get("child")]
    os.kill(child.proc.pid, signal.SIGINT)
    assert wait_exit(child) == 0
    assert_all_gone(pids, timeout=3)


def test_embedded_engine_command_line(spawn: SpawnFn, fake_inngest: FakeInngest, ports: tuple[int, int],
                                      agentcmd_home: Path) -> None:
    """AGENTCMD_ENGINE_COMMAND stands the fake in for ``python -m agentcmd engine``."""
    child = supervise(spawn, fake_inngest, ports, "start", engine="embedded",
                      AGENTCMD_ENGINE_COMMAND=fake_inngest.engine_command)
    out = wait_output(child, READY)
    call = fake_inngest.records()[0]
    sqlite_dir = agentcmd_home / "data" / "engine"
    assert call["argv"] == ["start", "--host", "127.0.0.1", "--port", str(ports[1]),
                            "--sqlite-dir", str(sqlite_dir), "--sdk-url", sdk_url(ports), "--passive-sync",
                            "--no-connect"]
    # Our engine gets the keys by pipe, not in its environment (readable in /proc/<pid>/environ).
    assert call["handed"] == ["INNGEST_EVENT_KEY", "INNGEST_SIGNING_KEY"]
    assert not {"INNGEST_EVENT_KEY", "INNGEST_SIGNING_KEY"} & set(call["env"])
    assert f"database: {sqlite_dir / 'engine.db'}" in out
    interrupt_and_check_clean_exit(child)
