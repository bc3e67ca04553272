"""``agentcmd workflows|runs|send`` as real subprocesses against the app server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HELLO = '''
from agentcmd import define_workflow

@define_workflow(id="hello", name="Say hello", phases=["greet"], retries=0,
                 args_schema={"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]})
async def hello(ctx, step):
    with step.phase("greet"):
        r = await step.cli("say", f"echo hello {ctx.input['who']}")
    return {"said": r.stdout.strip()}

@define_workflow(id="fails", retries=0)
async def fails(ctx, step):
    await step.cli("boom", "echo broken >&2; exit 7")
'''


def _env(stack: Any) -> dict[str, str]:
    return {"PORT": str(stack.app.url.rsplit(":", 1)[1])}


def test_run_wait_prints_the_output_and_exits_0(stack: Any, write_workflow: Any, cli: Any) -> None:
    write_workflow("hello.py", HELLO)
    s = stack()
    out = cli("workflows", "run", "hello", "--input", '{"who": "cli"}', "--wait", "--timeout", "60", env=_env(s))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"said": "hello cli"}
    runs = json.loads(cli("runs", "list", "--workflow", "hello", "--json", env=_env(s)).stdout)
    assert [r["status"] for r in runs] == ["Completed"]
    shown = cli("runs", "show", runs[0]["run_id"], env=_env(s))
    assert shown.returncode == 0 and "greet" in shown.stdout and "say" in shown.stdout


def test_a_failed_run_exits_1_with_its_error(stack: Any, write_workflow: Any, cli: Any) -> None:
    write_workflow("hello.py", HELLO)
    s = stack()
    out = cli("workflows", "run", "fails", "--wait", env=_env(s))
    assert out.returncode == 1
    assert "error: run " in out.stderr and "failed" in out.stderr and "exited with code 7" in out.stderr
    assert "fix: see 'agentcmd runs show" in out.stderr and "Traceback" not in out.stderr


def test_bad_input_exits_2_and_starts_nothing(stack: Any, write_workflow: Any, cli: Any) -> None:
    write_workflow("hello.py", HELLO)
    s = stack()
    out = cli("workflows", "run", "hello", "--input", '{"who": 5}', "--wait", env=_env(s))
    assert out.returncode == 2
    assert "who: expected string, got integer" in out.stderr
    out = cli("workflows", "run", "hello", "--input", "{nope", env=_env(s))
    assert out.returncode == 2 and "--input is not valid JSON" in out.stderr
    assert s.engine.events == []


def test_list_send_and_cancel(stack: Any, write_workflow: Any, cli: Any, wait_until: Any) -> None:
    write_workflow("hello.py", HELLO)
    s = stack()
    listed = cli("workflows", "list", env=_env(s))
    assert listed.returncode == 0 and "hello  Say hello  phases=greet  trigger=agentcmd/workflow.hello" in listed.stdout
    sent = cli("send", "agentcmd/workflow.hello", "--data", '{"who": "event"}', env=_env(s))
    assert sent.returncode == 0 and sent.stdout.strip() == s.engine.events[0]["id"]
    run = wait_until(lambda: [r for r in s.engine.runs.values() if r["status"] == "Completed"], 20, "run")[0]
    assert run["output"] == {"said": "hello event"}
    cancelled = cli("runs", "cancel", run["run_id"], env=_env(s))
    assert cancelled.returncode == 0 and "Completed" in cancelled.stdout  # a finished run stays finished


def test_without_an_app_server_list_reads_the_project_and_runs_says_how_to_start_it(
        project: Path, write_workflow: Any, cli: Any) -> None:
    write_workflow("hello.py", HELLO)
    write_workflow("broken.py", "raise ValueError('nope')\n")
    env = {"PORT": "1"}
    out = cli("workflows", "list", "--project", str(project), env=env)
    # A file that does not load is an error (exit 1), and what loads is still listed.
    assert out.returncode == 1 and "hello  Say hello" in out.stdout and "fails" in out.stdout
    assert "not reachable" in out.stderr and "broken.py:1: ValueError: nope" in out.stderr
    assert "fix: correct the code on that line" in out.stderr and "1 workflow load error" in out.stderr
    out = cli("runs", "list", env=env)
    assert out.returncode == 2 and "fix: start it with 'agentcmd dev'" in out.stderr


def test_on_a_terminal_run_wait_shows_phases_and_steps(stack: Any, write_workflow: Any) -> None:
    import os
    import pty
    import subprocess
    import sys

    write_workflow("hello.py", HELLO)
    s = stack()
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "agentcmd", "workflows", "run", "hello", "--input",
                             '{"who": "tty"}', "--wait"], stdout=slave, stderr=subprocess.PIPE,
                            env={**os.environ, **_env(s), "COLUMNS": "120", "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    screen = b"".join(chunks).decode(errors="replace")
    assert "run " in screen and "greet" in screen and "say" in screen and "Completed" in screen
    assert '"said": "hello tty"' in screen


def test_input_can_come_from_a_file(tmp_path: Path) -> None:
    import pytest

    from agentcmd.cli.runs import parse_json_arg
    from agentcmd.errors import InputError

    (tmp_path / "in.json").write_text('{"who": "file"}')
    assert parse_json_arg(f"@{tmp_path / 'in.json'}", "--input") == {"who": "file"}
    with pytest.raises(InputError, match="cannot read"):
        parse_json_arg(f"@{tmp_path / 'missing.json'}", "--input")
