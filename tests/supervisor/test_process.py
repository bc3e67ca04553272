"""ManagedProcess with real child processes: output, stop, process groups, parent death."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.harness.processes import pid_alive
from tests.polling import wait_for
from tests.supervisor.conftest import assert_all_gone

from agentcmd.supervisor.logs import LogSink
from agentcmd.supervisor.process import ChildSpec, ManagedProcess, describe_returncode, wait_until


def python_child(name: str, code: str) -> ChildSpec:
    return ChildSpec(name, [sys.executable, "-c", textwrap.dedent(code)], dict(os.environ))


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


def test_output_lines_are_prefixed_with_the_child_name_and_the_tail_is_kept(out: io.StringIO) -> None:
    child = ManagedProcess(python_child("app", """
        import sys
        print("one", flush=True)
        print("two", file=sys.stderr, flush=True)
        sys.exit(4)
    """), LogSink("plain", out))
    child.start()
    wait_for(lambda: child.poll() is not None, 10, "the child to exit")
    assert child.tail() == ["one", "two"]
    assert child.stop(1.0) == 4
    assert out.getvalue().splitlines() == ["app    │ one", "app    │ two"]


def test_json_format_writes_one_object_per_line(out: io.StringIO) -> None:
    import json

    child = ManagedProcess(python_child("engine", "print('hello', flush=True)"), LogSink("json", out))
    child.start()
    wait_for(lambda: child.poll() is not None, 10, "the child to exit")
    child.stop(5.0)
    record = json.loads(out.getvalue().splitlines()[0])
    assert record["source"] == "engine" and record["message"] == "hello" and record["ts"].endswith("Z")


def test_stop_sends_sigterm_and_a_well_behaved_child_exits_cleanly(out: io.StringIO) -> None:
    child = ManagedProcess(python_child("engine", """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """), LogSink("plain", out))
    child.start()
    wait_for(lambda: "ready" in out.getvalue(), 10, "ready", out.getvalue)
    assert child.stop(5.0) == 0
    assert "SIGKILL" not in out.getvalue()


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period_and_that_is_logged(out: io.StringIO) -> None:
    child = ManagedProcess(python_child("engine", """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """), LogSink("plain", out))
    child.start()
    wait_for(lambda: "ready" in out.getvalue(), 10, "ready", out.getvalue)
    assert child.stop(0.3) == -signal.SIGKILL
    assert "warning: engine (pid" in out.getvalue() and "sending SIGKILL" in out.getvalue()


def test_stop_reaches_the_whole_process_group(out: io.StringIO) -> None:
    """A wrapper (npx -> node -> inngest) must not leave its own children behind."""
    child = ManagedProcess(python_child("engine", """
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(f"grandchild {grandchild.pid}", flush=True)
        time.sleep(60)
    """), LogSink("plain", out))
    child.start()
    text = wait_for(lambda: "grandchild" in out.getvalue() and out.getvalue(), 10, "grandchild pid")
    grandchild = int(text.split("grandchild ")[1].split()[0])
    child.stop(5.0)
    assert_all_gone([grandchild], timeout=5)


def test_children_get_a_parent_death_signal(tmp_path: Path) -> None:
    """Without any watchdog: SIGKILL the parent, the kernel stops the child (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only; the watchdog covers other systems")
    parent_code = textwrap.dedent(f"""
        import io, sys, time
        sys.path[:0] = {sys.path!r}
        from agentcmd.supervisor.logs import LogSink
        from agentcmd.supervisor.process import ChildSpec, ManagedProcess
        child = ManagedProcess(ChildSpec("c", [sys.executable, "-c", "import time; time.sleep(60)"], {{}}),
                               LogSink("plain", io.StringIO()))
        child.start()
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert pid_alive(child_pid)
        parent.kill()
        parent.wait(5)
        assert_all_gone([child_pid], timeout=5)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


@pytest.mark.parametrize(("code", "text"), [
    (0, "exited with code 0"), (3, "exited with code 3"),
    (-signal.SIGKILL, "was killed by SIGKILL"), (-signal.SIGTERM, "was killed by SIGTERM"),
])
def test_describe_returncode(code: int, text: str) -> None:
    assert describe_returncode(code) == text


def test_wait_until_gives_up_at_the_deadline() -> None:
    assert wait_until(lambda: False, 0.05) is False
    assert wait_until(lambda: True, 0.05) is True

