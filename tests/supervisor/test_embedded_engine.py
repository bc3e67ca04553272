"""``agentcmd dev`` / ``agentcmd start`` with the real embedded engine and the real app server."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.harness.processes import Spawned
from tests.supervisor.conftest import assert_all_gone, child_pids, wait_exit, wait_output

from agentcmd.config.sources import read_config_file

SpawnFn = Callable[..., Spawned]
READY = "ready in "


def get_json(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.load(resp)


def start(spawn: SpawnFn, command: str, ports: tuple[int, int], project: Path, *args: str,
          **env: str) -> Spawned:
    return spawn(command, "--port", str(ports[0]), "--engine-port", str(ports[1]), "--project", str(project),
                 *args, env=env)


def stop_cleanly(child: Spawned) -> None:
    pids = list(child_pids(child.output()).values())
    assert len(pids) == 2
    os.kill(child.proc.pid, signal.SIGINT)
    assert wait_exit(child) == 0, child.output()
    assert_all_gone(pids, timeout=5, output=child.output)


def test_start_runs_the_engine_in_persistent_mode_with_the_app_synced(
        spawn: SpawnFn, ports: tuple[int, int], project: Path, agentcmd_home: Path) -> None:
    child = start(spawn, "start", ports, project)
    out = wait_output(child, READY, timeout=30)
    database = agentcmd_home / "data" / "engine" / "engine.db"
    assert f"Starting Inngest Server (persistent mode) on http://127.0.0.1:{ports[1]}; database: {database}" in out
    assert "synced the app with the engine" in out
    health = get_json(f"http://127.0.0.1:{ports[1]}/health")
    assert health["mode"] == "production" and health["persistent"] is True and health["database"] == str(database)
    signing_key = read_config_file(agentcmd_home / "config.json")["signing_key"]
    functions = get_json(f"http://127.0.0.1:{ports[1]}/v1/functions", signing_key)["data"]
    assert functions, "the engine should know the app's workflow once the supervisor says ready"
    with pytest.raises(urllib.error.HTTPError) as info:  # production: the REST API needs the key
        get_json(f"http://127.0.0.1:{ports[1]}/v1/functions")
    assert info.value.code == 401
    info.value.close()
    stop_cleanly(child)
    assert database.exists()


def test_node_env_development_makes_start_run_in_dev(spawn: SpawnFn, ports: tuple[int, int],
                                                     project: Path) -> None:
    child = start(spawn, "start", ports, project, NODE_ENV="development")
    out = wait_output(child, READY, timeout=30)
    assert "mode: dev (from NODE_ENV=development)" in out and "ephemeral: history is lost on restart" in out
    assert get_json(f"http://127.0.0.1:{ports[1]}/health")["mode"] == "dev"
    stop_cleanly(child)


def test_sigkill_of_dev_leaves_no_engine_or_app(spawn: SpawnFn, ports: tuple[int, int], project: Path) -> None:
    child = start(spawn, "dev", ports, project)
    pids = list(child_pids(wait_output(child, READY, timeout=30)).values())
    child.proc.kill()
    child.proc.wait(5)
    assert_all_gone(pids, timeout=8, output=child.output)


def test_a_second_start_on_the_same_database_fails_with_the_engines_message(
        spawn: SpawnFn, ports: tuple[int, int], project: Path) -> None:
    from tests.harness.processes import free_port

    first = start(spawn, "start", ports, project)
    wait_output(first, READY, timeout=30)
    second = start(spawn, "start", (free_port(), free_port()), project)
    assert wait_exit(second, timeout=30) == 3
    out = second.output()
    assert "is in use by another engine process" in out
    assert "the engine exited with code 3 during startup" in out
    assert_all_gone(list(child_pids(out).values()), timeout=5)
    stop_cleanly(first)


def test_a_corrupt_database_is_reported_with_the_engines_message_and_exit_code_3(
        spawn: SpawnFn, ports: tuple[int, int], project: Path, agentcmd_home: Path) -> None:
    database = agentcmd_home / "data" / "engine" / "engine.db"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"this is not a SQLite database, not at all" * 200)
    child = start(spawn, "start", ports, project)
    assert wait_exit(child, timeout=30) == 3
    out = child.output()
    assert f"engine │ error: the engine database {database} is corrupt" in out
    assert "error: the engine exited with code 3 during startup; stopped the app" in out
    assert "Traceback" not in out
    assert_all_gone(list(child_pids(out).values()), timeout=5)
