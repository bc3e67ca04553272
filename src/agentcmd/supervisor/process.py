"""One child under the supervisor: spawn, prefixed output, readiness, stop.

Why each choice:

- Each child leads its own session (``start_new_session``): a Ctrl-C in the
  terminal reaches only the supervisor, which then stops the app *before*
  the engine; and stopping signals the whole process group, so a wrapper's
  children (``npx`` -> ``node`` -> ``inngest``) go too.
- On Linux the child asks for ``PR_SET_PDEATHSIG`` (SIGTERM) between fork
  and exec: if the supervisor is SIGKILLed the kernel stops the child. The
  signal fires when the *thread* that forked dies, so children are spawned
  from the main thread only. ``watchdog.py`` is the portable fallback.
- stdout and stderr are one pipe read by one thread per child; the last
  lines are kept so an early exit can be reported with what the child said.
- Readiness is ``GET /health`` answering 200, polled by the supervisor;
  ``http.client`` because importing httpx would cost startup time.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agentcmd.handover import handover_env
from agentcmd.supervisor.logs import LogSink

PR_SET_PDEATHSIG = 1
PARENT_DEATH_SIGNAL = signal.SIGTERM

_libc: object | None = None
if sys.platform.startswith("linux"):
    import ctypes

    with contextlib.suppress(OSError):  # no libc to load: the watchdog still covers us
        _libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class ChildSpec:
    """What to run: a name for the log prefix, argv, env, and its health URL."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    health_url: str | None = None
    cwd: Path | None = None
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # handed over by pipe, not env
    ready_lines: tuple[str, ...] = ()   # a child with no health URL is ready once it printed one (a connect worker)


def describe_returncode(code: int) -> str:
    """``exited with code 3`` / ``was killed by SIGKILL``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _parent_death_preexec(parent_pid: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: no imports, no allocation-heavy work."""
    libc = _libc

    def preexec() -> None:
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL))  # type: ignore[attr-defined]
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def http_get_status(url: str, timeout: float = 1.0) -> int | None:
    """The status of ``GET url``, or None when nothing answers (refused, reset, timeout)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class ManagedProcess:
    """A started child: its output streamed to the sink, stoppable within a deadline."""

    def __init__(self, spec: ChildSpec, sink: LogSink, *, tail_lines: int = 40,
                 on_output_closed: Callable[[], None] | None = None) -> None:
        self.spec = spec
        self.sink = sink
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._tail_lock = threading.Lock()
        self._on_output_closed = on_output_closed
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.ready_seen = threading.Event()   # one of spec.ready_lines was printed

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._proc.pid

    def start(self) -> None:
        """Spawn the child (call from the main thread: see the module docstring)."""
        env, fds = handover_env(self.spec.env, self.spec.secrets)
        try:
            self._proc = subprocess.Popen(
                list(self.spec.argv), env=env, cwd=self.spec.cwd,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, pass_fds=fds,
                preexec_fn=_parent_death_preexec(os.getpid()),
            )
        finally:
            for fd in fds:
                os.close(fd)
        self._reader = threading.Thread(target=self._pump, name=f"{self.name}-output", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            for raw in iter(self._proc.stdout.readline, b""):
                line = raw.decode(errors="replace").rstrip("\r\n")
                with self._tail_lock:
                    self._tail.append(line)
                if any(marker in line for marker in self.spec.ready_lines):
                    self.ready_seen.set()
                self.sink.child_line(self.name, line)
        finally:
            self._proc.stdout.close()
            if self._on_output_closed is not None:
                self._on_output_closed()

    def poll(self) -> int | None:
        """The exit code once the child has exited, else None."""
        return None if self._proc is None else self._proc.poll()

    def is_healthy(self, timeout: float = 1.0) -> bool:
        return self.spec.health_url is not None and http_get_status(self.spec.health_url, timeout) == 200

    def tail(self, n: int = 10) -> list[str]:
        """The last ``n`` output lines (all output is read first, within a second)."""
        if self._reader is not None and self.poll() is not None:
            self._reader.join(timeout=1.0)
        with self._tail_lock:
            return list(self._tail)[-n:]

    def stop(self, grace: float, hurry: threading.Event | None = None) -> int:
        """SIGTERM the process group, wait up to ``grace`` s, then SIGKILL. Returns the exit code.

        Setting ``hurry`` (a second Ctrl-C) ends the grace period at once.
        """
        proc = self._proc
        if proc is None:
            raise RuntimeError(f"{self.name} was not started")
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while proc.poll() is None and time.monotonic() < deadline:
                if hurry is not None and hurry.is_set():
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
            if proc.poll() is None:
                why = "a second signal" if hurry is not None and hurry.is_set() else \
                    f"not stopping within {grace:g} s of SIGTERM"
                self.sink.warning(f"{self.name} (pid {proc.pid}): sending SIGKILL after {why}",
                                  child=self.name, pid=proc.pid)
                self._signal_group(signal.SIGKILL)
                proc.wait()
        self._signal_group(signal.SIGKILL)  # stragglers of the group (a wrapper's children)
        if self._reader is not None:
            self._reader.join(timeout=1.0)
        return proc.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until true or ``timeout`` s pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
