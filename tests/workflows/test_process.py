"""Step subprocesses: bounded output, timeouts and cancels stop the whole group, the loop never blocks."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.processes import pid_alive

from agentcmd.workflows.process import run_process, running_count, terminate_run


def _dead(pid: int) -> bool:
    return not pid_alive(pid)


async def test_a_timeout_stops_the_group_including_grandchildren(tmp_path: Path) -> None:
    started = time.monotonic()
    res = await run_process("sleep 30 & echo $! > child.pid; wait", cwd=tmp_path, timeout=0.5, grace=1)
    assert res.timed_out and res.exit_code != 0 and time.monotonic() - started < 5
    assert _dead(int((tmp_path / "child.pid").read_text()))


async def test_a_command_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    started = time.monotonic()
    res = await run_process("trap '' TERM; echo ready; sleep 30 & echo $! > child.pid; wait", cwd=tmp_path,
                            timeout=0.5, grace=0.5)
    assert res.timed_out and res.stdout == "ready\n" and time.monotonic() - started < 5
    assert _dead(int((tmp_path / "child.pid").read_text()))


async def test_terminate_run_stops_that_runs_commands_and_marks_them_cancelled(tmp_path: Path) -> None:
    task = asyncio.create_task(run_process(["sleep", "30"], run_id="run-to-cancel", grace=1))
    for _ in range(200):
        if running_count("run-to-cancel"):
            break
        await asyncio.sleep(0.01)
    assert terminate_run("run-to-cancel") == 1
    res = await asyncio.wait_for(task, 5)
    assert res.cancelled and res.exit_code == -15
    assert running_count("run-to-cancel") == 0


async def test_a_missing_program_is_file_not_found_and_a_shell_says_127() -> None:
    with pytest.raises(FileNotFoundError):
        await run_process(["definitely-not-a-program-xyz"])
    assert (await run_process("definitely-not-a-program-xyz")).exit_code == 127


def test_a_step_timeout_fails_the_step_with_a_clear_message(app_server: Any, write_workflow: Any) -> None:
    write_workflow("slow.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="slow", retries=0)
        async def slow(ctx, step):
            await step.cli("wait", "sleep 30", timeout="300ms")
    ''')
    started = time.monotonic()
    run = app_server().driver.run("slow")
    assert run.status == "Failed" and time.monotonic() - started < 10
    assert "timed out after 0.3s" in run.output["message"]


def test_a_running_command_does_not_block_the_server(app_server: Any, write_workflow: Any, project: Path,
                                                     wait_until: Any) -> None:
    write_workflow("nap.py", '''
        from agentcmd import define_workflow

        @define_workflow(id="nap", retries=0)
        async def nap(ctx, step):
            await step.cli("nap", "touch napping; sleep 2")
            return "rested"
    ''')
    server = app_server()
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(server.driver.run("nap")))
    thread.start()
    wait_until(lambda: (project / "napping").exists(), 10, "the command to start")
    started = time.monotonic()
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    assert time.monotonic() - started < 0.5
    thread.join(20)
    assert results[0].output == "rested"


async def test_a_background_child_holding_the_pipes_does_not_hang_the_step(tmp_path: Path) -> None:
    started = time.monotonic()
    res = await run_process("echo before; sleep 4 & echo $! > bg.pid", cwd=tmp_path)
    assert res.exit_code == 0 and res.stdout.startswith("before") and time.monotonic() - started < 3.5
    os.kill(int((tmp_path / "bg.pid").read_text()), 9)


async def test_the_app_servers_keys_are_not_inherited_by_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNGEST_SIGNING_KEY",
                       "signkey-prod-36a1f3b2dec415623923fcb56949e180259e4cfc2b583737062f1506a3ad3652")
    monkeypatch.setenv("INNGEST_EVENT_KEY", "f409725ceb54cf9c9f10e5a2b42c8feb9fc41e77509369e27bbc786651654796")
    monkeypatch.setenv("AGENTCMD_DASHBOARD_TOKEN", "dash-secret")
    monkeypatch.setenv("SOMETHING_ELSE", "kept")
    res = await run_process(["env"])
    assert "SOMETHING_ELSE=kept" in res.stdout
    assert "secret" not in res.stdout and "signkey" not in res.stdout
    res = await run_process(["env"], env={"INNGEST_EVENT_KEY": "given"})
    assert "INNGEST_EVENT_KEY=given" in res.stdout
