"""Start, ready, reload and stop of ``agentcmd dev`` / ``agentcmd start`` with the real embedded engine.

Everything is real: ``python -m agentcmd dev|start`` subprocesses, the app
server, the engine, signals. What is checked (docs/running.md):

- stop order (docs/running.md, shutdown): the engine first, then the app; both exit 0,
  the supervisor exits 0, no process (nor a step's command) is left;
- "ready" means ready: an event sent the moment "ready" is printed starts
  its run, in 20 fresh starts of each mode, and no start logs a sync warning;
- reload: dev picks up a new workflow file within 2 s while a run is in
  flight (the run completes); production reloads on SIGHUP and on
  ``agentcmd workflows reload`` without restarting a child;
- an empty project starts without a 500 or a repeated warning, and a
  workflow added later is loaded and runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.keys import app_headers
from tests.harness.processes import Spawned, free_port, pid_alive
from tests.polling import wait_for
from tests.supervisor.conftest import HELLO_WORKFLOW, assert_all_gone, child_pids, wait_exit, wait_output

SpawnFn = Callable[..., Spawned]
READY = "ready in "

SLOW_WORKFLOW = """
from agentcmd import define_workflow


@define_workflow(id="slow", retries=0)
async def slow(ctx, step):
    await step.cli("wait", "echo $$ > {pid_file}; while [ ! -f {release} ]; do sleep 0.05; done")
    return "done"
"""

SECOND_WORKFLOW = """
from agentcmd import define_workflow


@define_workflow(id="{wid}", retries=0)
async def second(ctx, step):
    return "second"
"""


def start(spawn: SpawnFn, command: str, project: Path, *args: str, ports: tuple[int, int] | None = None,
          **env: str) -> Spawned:
    app_port, engine_port = ports or (free_port(), free_port())
    return spawn(command, "--port", str(app_port), "--engine-port", str(engine_port), "--project", str(project),
                 "--stop-grace", "5", *args, env=env)


def app_port(child: Spawned) -> int:
    args = list(child.proc.args)  # type: ignore[arg-type]
    return int(args[args.index("--port") + 1])


def api(child: Spawned, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("headers", app_headers(child.env.get("AGENTCMD_HOME")))  # production: the signing key as bearer
    return httpx.request(method, f"http://127.0.0.1:{app_port(child)}{path}", timeout=15, **kwargs)


def start_run(child: Spawned, workflow: str) -> str | None:
    resp = api(child, "POST", f"/api/workflows/{workflow}/runs", json={})
    assert resp.status_code == 202, resp.text
    run_id: str | None = resp.json()["data"]["run_id"]
    return run_id


def listed(child: Spawned) -> list[str]:
    return [wf["id"] for wf in api(child, "GET", "/api/workflows").json()["data"]]


def run_status(child: Spawned, run_id: str) -> str:
    return str(api(child, "GET", f"/api/runs/{run_id}").json()["data"]["status"])


def json_lines(output: str) -> list[dict[str, Any]]:
    out = []
    for line in output.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            found.append(int(entry.name))
    return found


def no_sync_warning(output: str) -> None:
    for bad in ("sync of", "could not sync", "Cannot connect", "WARNING", "Traceback"):
        assert bad not in output, f"{bad!r} in a normal start:\n{output}"


def stop_log(output: str) -> tuple[list[str], dict[str, int], list[dict[str, Any]]]:
    """(the stop lines in order, each child's exit code, the supervisor's own lines)."""
    said = [line for line in json_lines(output) if line.get("source") == "agentcmd"]
    order = [line["message"].split(" (")[0] for line in said
             if line["message"].startswith(("stopping ", "engine ", "app ")) and "started" not in line["message"]]
    codes = {line["child"]: line["exit_code"] for line in said if "exit_code" in line and "child" in line}
    return order, codes, said


@pytest.mark.parametrize("command", ["dev", "start"])
def test_stop_order_is_the_engine_then_the_app(spawn: SpawnFn, project: Path, command: str) -> None:
    child = start(spawn, command, project, "--log-format", "json")
    wait_output(child, READY, timeout=30)
    pids = list(child_pids(child.output()).values())
    os.kill(child.proc.pid, signal.SIGINT if command == "dev" else signal.SIGTERM)
    assert wait_exit(child, timeout=30) == 0, child.output()
    order, codes, said = stop_log(child.output())
    assert order == ["stopping engine", "engine stopped", "stopping app", "app stopped"], order
    assert codes["engine"] == 0, codes
    assert not any(line.get("level") in ("warning", "error") for line in said), said
    assert_all_gone(pids, timeout=5, output=child.output)


@pytest.mark.parametrize("command", ["dev", "start"])
def test_stop_with_a_step_running_exits_0_everywhere_and_leaves_no_process(
        spawn: SpawnFn, project: Path, tmp_path: Path, command: str) -> None:
    release, pid_file = tmp_path / "release", tmp_path / "step.pid"
    (project / ".agentcmd" / "workflows" / "slow.py").write_text(
        SLOW_WORKFLOW.format(pid_file=pid_file, release=release))
    child = start(spawn, command, project, "--log-format", "json")
    wait_output(child, READY, timeout=30)
    pids = list(child_pids(child.output()).values())
    assert start_run(child, "slow")
    step_pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 15, "the step to run"))
    os.kill(child.proc.pid, signal.SIGINT if command == "dev" else signal.SIGTERM)
    assert wait_exit(child, timeout=30) == 0, child.output()
    order, codes, said = stop_log(child.output())
    # the engine gives up its in-flight call at once (recorded interrupted, exit 0), then the
    # app stops the step's process group and exits 0; no SIGKILL is needed.
    assert order == ["stopping engine", "engine stopped", "stopping app", "app stopped"], order
    assert codes == {"engine": 0, "app": 0}, codes
    assert not any(line.get("level") in ("warning", "error") for line in said), said
    assert_all_gone([*pids, step_pid], timeout=5, output=child.output)
    assert not group_members(step_pid), "a process of the step's group is still running"


LANES = 2
"""Fresh starts run in two lanes at once (own ports, own AGENTCMD_HOME): half the wall time, and a
loaded machine is where a start-up race shows."""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["dev", "start"])
def test_twenty_fresh_starts_each_start_a_run_the_moment_ready_is_printed(
        spawn: SpawnFn, project: Path, tmp_path: Path, command: str) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    spawning = threading.Lock()  # the fixture names each child's log after how many it started

    def lane(index: int) -> list[str]:
        misses = []
        home = tmp_path / f"home-{index}"
        for attempt in range(20 // LANES):
            with spawning:
                child = start(spawn, command, project, AGENTCMD_HOME=str(home))
            wait_output(child, READY, timeout=60)
            run_id = start_run(child, "hello")     # at once: no wait between "ready" and the event
            if run_id is None:
                misses.append(f"lane {index} start {attempt}")
            out = child.output()
            no_sync_warning(out)
            pids = list(child_pids(out).values())
            os.kill(child.proc.pid, signal.SIGINT)
            assert wait_exit(child, timeout=30) == 0, child.output()
            assert_all_gone(pids, timeout=5, output=child.output)
        return misses

    with ThreadPoolExecutor(LANES) as pool:
        misses = [m for found in pool.map(lane, range(LANES)) for m in found]
    assert not misses, f"{misses} of 20 starts answered without a run"


def test_dev_reloads_a_new_workflow_within_2_s_while_a_run_is_in_flight(
        spawn: SpawnFn, project: Path, tmp_path: Path) -> None:
    release, pid_file = tmp_path / "release", tmp_path / "step.pid"
    workflows = project / ".agentcmd" / "workflows"
    (workflows / "slow.py").write_text(SLOW_WORKFLOW.format(pid_file=pid_file, release=release))
    child = start(spawn, "dev", project)
    wait_output(child, READY, timeout=30)
    pids = child_pids(child.output())
    run_id = start_run(child, "slow")
    assert run_id
    step_pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 15, "the step to run"))
    (workflows / "second.py").write_text(SECOND_WORKFLOW.format(wid="second"))
    written = time.monotonic()
    wait_for(lambda: "second" in listed(child), 2.0, "the new workflow to be listed", child.output)
    took = time.monotonic() - written
    assert took < 2.0
    assert pid_alive(step_pid), "the reload interrupted the step in flight"
    assert start_run(child, "second"), "the engine did not know the reloaded workflow"
    release.write_text("go")
    wait_for(lambda: run_status(child, run_id) == "Completed", 15, "the in-flight run to complete", child.output)
    assert child_pids(child.output()) == pids, "a child was restarted"
    assert "reloaded the workflows and synced them with the engine: hello, second, slow (added: second)" \
        in child.output()
    # A file that does not load is reported; the others keep being served.
    (workflows / "broken.py").write_text("this is not python\n")
    wait_for(lambda: "workflow not loaded:" in child.output() and "broken.py" in child.output(), 2.0,
             "the load error to be reported", child.output)
    assert "second" in listed(child)


def test_dev_misses_no_file_saved_while_starting_or_the_moment_ready_is_printed(
        spawn: SpawnFn, project: Path) -> None:
    workflows = project / ".agentcmd" / "workflows"
    child = start(spawn, "dev", project)
    wait_output(child, "app started", timeout=30)
    (workflows / "during.py").write_text(SECOND_WORKFLOW.format(wid="during"))
    wait_output(child, READY, timeout=30)
    (workflows / "after.py").write_text(SECOND_WORKFLOW.format(wid="after"))
    wait_for(lambda: {"during", "after"} <= set(listed(child)), 2.0, "both files to be listed", child.output)
    assert start_run(child, "during") and start_run(child, "after")


def test_production_reloads_on_sighup_and_on_the_cli_without_a_restart(
        spawn: SpawnFn, project: Path, agentcmd_home: Path) -> None:
    workflows = project / ".agentcmd" / "workflows"
    port = free_port()
    child = start(spawn, "start", project, ports=(port, free_port()))
    wait_output(child, READY, timeout=30)
    pids = child_pids(child.output())
    (workflows / "second.py").write_text(SECOND_WORKFLOW.format(wid="second"))
    assert "second" not in listed(child), "production must not reload on its own"
    os.kill(child.proc.pid, signal.SIGHUP)
    wait_for(lambda: "second" in listed(child), 10, "SIGHUP to reload the workflows", child.output)
    assert start_run(child, "second")
    (workflows / "third.py").write_text(SECOND_WORKFLOW.format(wid="third"))
    cli = subprocess.run([sys.executable, "-m", "agentcmd", "workflows", "reload"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PORT": str(port)}, check=False)
    assert cli.returncode == 0, cli.stderr
    assert "added: third" in cli.stdout and "reloaded and synced with the engine: hello, second, third" in cli.stdout
    assert start_run(child, "third")
    assert child.proc.poll() is None and child_pids(child.output()) == pids, "a child was restarted"
    os.kill(child.proc.pid, signal.SIGTERM)
    assert wait_exit(child, timeout=30) == 0


def test_an_empty_project_starts_cleanly_and_picks_up_its_first_workflow(
        spawn: SpawnFn, tmp_path: Path) -> None:
    project = tmp_path / "empty"
    project.mkdir()
    child = start(spawn, "dev", project)
    out = wait_output(child, READY, timeout=30)
    assert (f"the app has no workflows yet: add a file to {project / '.agentcmd' / 'workflows'}; "
            "'agentcmd dev' loads it within 2 s and syncs it with the engine") in out
    assert "next sync" not in out
    # The old engine re-synced every 5 s and the SDK answered each with a 500: watch 6 s for any.
    observed_until = time.monotonic() + 6
    while time.monotonic() < observed_until:
        assert " 500" not in child.output() and "WARNING" not in child.output(), child.output()
        time.sleep(0.2)
    (project / ".agentcmd" / "workflows").mkdir(parents=True)
    (project / ".agentcmd" / "workflows" / "hello.py").write_text(HELLO_WORKFLOW)
    wait_for(lambda: "hello" in listed(child), 4, "the first workflow to be listed", child.output)
    run_id = start_run(child, "hello")
    assert run_id
    wait_for(lambda: run_status(child, run_id) == "Completed", 15, "the run to complete", child.output)
    no_sync_warning(child.output())


def test_ready_waits_for_the_engine_to_take_every_workflow_and_a_refusal_stops_the_start(
        spawn: SpawnFn, project: Path, fake_inngest: Any) -> None:
    """With a stand-in engine: one that says it took fewer functions than the app serves is asked again
    until the deadline (never "ready"); one that refuses the registration stops the start with its reason."""
    engine = {"AGENTCMD_ENGINE_COMMAND": fake_inngest.engine_command}
    short = start(spawn, "dev", project, "--startup-timeout", "4",
                  **fake_inngest.env(FAKE_INNGEST_REGISTER_FUNCTIONS="0", **engine))
    assert wait_exit(short, timeout=30) == 1
    out = short.output()
    assert READY not in out
    assert "could not sync the app with the engine" in out and "the engine took 0 of the app's 1 workflows" in out
    syncs = [r for r in fake_inngest.records() if "register" in r]
    assert len(syncs) > 2, "the sync was not retried"
    refused = start(spawn, "dev", project, **fake_inngest.env(FAKE_INNGEST_REGISTER_STATUS="400", **engine))
    assert wait_exit(refused, timeout=30) == 1
    out = refused.output()
    assert READY not in out, out
    assert "the engine at http://127.0.0.1:" in out and "refused the app's sync (fake refusal)" in out, out
    assert "Traceback" not in out
