"""The watchdog: stops the process groups still registered when its stdin closes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness.processes import pid_alive
from tests.polling import wait_for
from tests.supervisor.conftest import assert_all_gone

from agentcmd.supervisor import watchdog

WATCHDOG = Path(watchdog.__file__)


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two process-group leaders that would sleep for a minute; one ignores SIGTERM."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True),
        subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                          "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ok', flush=True); time.sleep(60)"],
                         start_new_session=True, stdout=subprocess.PIPE),
    ]
    assert procs[1].stdout is not None and procs[1].stdout.readline() == b"ok\n"
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def start_watchdog(grace: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-I", "-S", str(WATCHDOG), str(grace)], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_on_eof_it_terms_then_kills_every_registered_group(sleepers: list[subprocess.Popen[bytes]]) -> None:
    dog = start_watchdog(grace=0.5)
    assert dog.stdin is not None and dog.stderr is not None
    dog.stdin.write(b"".join(f"+{p.pid}\n".encode() for p in sleepers))
    dog.stdin.close()  # the supervisor died
    for proc in sleepers:
        wait_for(lambda p=proc: p.poll() is not None, 10, f"pid {proc.pid} to be stopped")
    assert sleepers[0].returncode == -15 and sleepers[1].returncode == -9
    assert dog.wait(5) == 0
    assert b"the supervisor is gone" in dog.stderr.read()
    dog.stderr.close()


def test_groups_the_supervisor_stopped_itself_are_left_alone(sleepers: list[subprocess.Popen[bytes]]) -> None:
    dog = start_watchdog(grace=0.5)
    assert dog.stdin is not None and dog.stderr is not None
    dog.stdin.write(f"+{sleepers[0].pid}\n-{sleepers[0].pid}\n".encode())
    dog.stdin.close()
    assert dog.wait(5) == 0
    assert pid_alive(sleepers[0].pid) and dog.stderr.read() == b""
    dog.stderr.close()
    sleepers[0].kill()
    sleepers[0].wait()
    assert_all_gone([sleepers[0].pid], timeout=2)
