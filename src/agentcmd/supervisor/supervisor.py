"""Start the engine and the app server, wait for both, watch them, stop them in order.

The shape follows huey's consumer: signal handlers only set flags and wake
the main loop; the main loop does the work. So a Ctrl-C at any moment is
handled the same way, and nothing is printed from inside a signal handler
(the sink's lock could be held by the very code the signal interrupted).

Startup: both children are spawned at once (the engine syncs the app in the
background and retries, so the order does not matter), then ``/health`` of
each is polled until 200, an early exit, a signal, or the deadline; then one
sync of the app makes "ready" mean "the engine knows the workflows". Shutdown: app first (it stops
sending events and taking calls), then the engine (it finishes writing);
each gets SIGTERM, a grace period, then SIGKILL, and every step is logged.
A second Ctrl-C skips the rest of the grace period.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from agentcmd.errors import ChildExitedError, SupervisorError
from agentcmd.supervisor.launch import ENGINE_COMMAND_ENV, LaunchPlan
from agentcmd.supervisor.logs import LogSink
from agentcmd.supervisor.process import ChildSpec, ManagedProcess, describe_returncode

EXIT_INTERRUPTED = 130
_WATCHDOG = Path(__file__).with_name("watchdog.py")
# SIGHUP: the terminal went away; the children (own sessions) did not get it, so stop them.
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Supervisor:
    """Runs one ``LaunchPlan`` until a signal or a child's death; returns the exit code."""

    def __init__(self, plan: LaunchPlan, sink: LogSink, *, startup_timeout: float = 30.0,
                 stop_grace: float = 5.0, poll_interval: float = 0.025) -> None:
        self.plan = plan
        self.sink = sink
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.poll_interval = poll_interval
        self._children: list[ManagedProcess] = []
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._signal: int | None = None
        self._stopping = False
        self._watchdog: subprocess.Popen[bytes] | None = None

    # Signals: flags only ----------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._signal is not None or self._stopping:
            self._hurry.set()
        if self._signal is None:
            self._signal = signum
        self._wake.set()

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _HANDLED_SIGNALS}
        try:
            return self._run(time.monotonic())
        finally:
            self._stopping = True
            self._stop_all()
            self._close_watchdog()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self, started: float) -> int:
        plan = self.plan
        self._start_watchdog()
        self.sink.info(plan.engine_banner(), engine=plan.engine_kind, mode=plan.mode.value,
                       database=str(plan.database_path) if plan.database_path else None)
        if plan.engine is not None:
            if plan.uses_npx:
                self.sink.info("the inngest binary comes through npx: the first start downloads it")
            self._spawn(plan.engine)
        self.sink.info(f"Starting app server on {plan.app_url} (SDK at {plan.sdk_url})")
        self._spawn(plan.app)
        if not self._wait_ready(started):
            self.sink.warning(f"interrupted by {_signal_name(self._signal)} during startup; stopping")
            return EXIT_INTERRUPTED
        self._sync_app()
        elapsed = time.monotonic() - started
        self.sink.info(f"ready in {elapsed:.2f} s: app {plan.app_url}, engine {plan.engine_url} (Ctrl-C to stop)",
                       ready_seconds=round(elapsed, 3))
        return self._watch()

    # Children ----------------------------------------------------------------
    def _spawn(self, spec: ChildSpec) -> ManagedProcess:
        child = ManagedProcess(spec, self.sink, on_output_closed=self._wake.set)
        try:
            child.start()
        except OSError as exc:
            raise SupervisorError(
                f"cannot start the {spec.name} ({spec.argv[0]}): {exc.strerror or exc}",
                "check that the program exists and is executable"
                + (f" (it comes from {ENGINE_COMMAND_ENV})" if spec.name == "engine" else ""),
                code="spawn_failed", exit_code=2) from None
        self._children.append(child)
        self._tell_watchdog(f"+{child.pid}")
        self.sink.info(f"{spec.name} started (pid {child.pid}): {shlex.join(spec.argv)}",
                       child=spec.name, pid=child.pid)
        return child

    def _check_exits(self, phase: str) -> None:
        for child in self._children:
            code = child.poll()
            if code is not None:
                self._child_failed(child, code, phase)

    def _child_failed(self, child: ManagedProcess, code: int, phase: str) -> None:
        lines = child.tail(12)
        what = f"the {child.name} {describe_returncode(code)} {phase}"
        # The error boundary prints `what`; repeat the child's last words right above it.
        if lines:
            self.sink.error(f"last lines of the {child.name}'s output:\n" +
                            "\n".join(f"    {line}" for line in lines), child=child.name, exit_code=code)
        others = [c.name for c in self._children if c is not child]
        stopped = f"; stopped the {' and the '.join(others)}" if others else ""
        # 2 (bad input) and 3 (database problem) are the engine's own exit codes: pass them on.
        exit_code = code if phase == "during startup" and code in (2, 3) else 1
        raise ChildExitedError(what + stopped,
                               f"read the {child.name}'s output above, fix what it reports, "
                               f"then run the command again", exit_code=exit_code,
                               details={"child": child.name, "exit_code": code})

    def _wait_ready(self, started: float) -> bool:
        """Poll every child's /health until all answer 200. False if a signal came first."""
        deadline = started + self.startup_timeout
        pending = [c for c in self._children if c.spec.health_url]
        while True:
            self._wake.clear()
            if self._signal is not None:
                return False
            self._check_exits("during startup")
            pending = [c for c in pending if not c.is_healthy(timeout=min(1.0, self.startup_timeout))]
            if not pending:
                return True
            if time.monotonic() >= deadline:
                late = pending[0]
                for line in late.tail(12):
                    self.sink.error(f"    {line}", child=late.name)
                raise SupervisorError(
                    f"the {late.name} did not answer GET {late.spec.health_url} with 200 within "
                    f"{self.startup_timeout:g} s; stopped it",
                    f"read the {late.name}'s output above; if it is only slow, raise --startup-timeout",
                    code="startup_timeout")
            self._wake.wait(self.poll_interval)

    def _watch(self) -> int:
        while True:
            self._wake.clear()
            if self._signal is not None:
                self.sink.info(f"received {_signal_name(self._signal)}; stopping the app, then the engine")
                return 0
            self._check_exits("while running")
            self._wake.wait(0.5)  # woken at once by a signal or a child closing its output

    def _stop_all(self) -> None:
        for child in reversed(self._children):  # app first, then engine
            running = child.poll() is None
            if running:
                self.sink.info(f"stopping {child.name} (pid {child.pid}): SIGTERM, "
                               f"up to {self.stop_grace:g} s", child=child.name)
            code = child.stop(self.stop_grace, hurry=self._hurry)
            self._tell_watchdog(f"-{child.pid}")
            if running:
                # uvicorn re-raises SIGTERM after a graceful shutdown: dying of it is a clean stop
                how = "stopped" if code in (0, -signal.SIGTERM) else describe_returncode(code)
                self.sink.info(f"{child.name} {how}", child=child.name, exit_code=code)
        self._children.clear()

    def _sync_app(self) -> None:
        """Have the SDK register the app with the engine now (its out-of-band sync, ``PUT``).

        The engine syncs its ``-u`` apps itself, but its first attempt usually
        comes before the app listens, and the retry waits a poll interval
        (5 s); an external engine does not know the app at all. One ``PUT``
        makes "ready" mean "the engine knows the app's workflows". It is
        idempotent, so a sync the engine already did costs nothing.
        """
        engine = "the external engine" if self.plan.engine is None else "the engine"
        parts = urlsplit(self.plan.sdk_url)
        # Bounded well below a user's patience: Ctrl-C is only acted on after this call.
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
        try:
            conn.request("PUT", parts.path, body=b"", headers={"Content-Length": "0"})
            response = conn.getresponse()
            body = response.read().decode(errors="replace")
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            status, body = 0, str(exc)
        finally:
            conn.close()
        # The SDK answers 200 even when the engine refused the registration: read the body too.
        answer: object = None
        with contextlib.suppress(ValueError):
            answer = json.loads(body)
        message = ""
        if isinstance(answer, dict):
            message = str(answer.get("error") or answer.get("message") or "")
        if 200 <= status < 300 and not (isinstance(answer, dict) and answer.get("error")):
            self.sink.info(f"synced the app with {engine} at {self.plan.engine_url}")
        elif "no functions found" in message:
            self.sink.info(f"the app has no workflows yet: add them under .agentcmd/workflows/ in "
                           f"{self.plan.app.argv[-1]}; {engine} picks them up at its next sync")
        else:
            reason = (message or body)[:300]
            self.sink.warning(f"could not sync the app with {engine} at {self.plan.engine_url} "
                              f"(status {status}: {reason}); check the keys both use")

    # Parent watch --------------------------------------------------------------
    def _start_watchdog(self) -> None:
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_WATCHDOG), str(self.stop_grace)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        except OSError as exc:
            self.sink.warning(f"could not start the watchdog ({exc}); children may outlive a killed "
                              f"supervisor on systems without a parent-death signal")

    def _tell_watchdog(self, token: str) -> None:
        if self._watchdog is None or self._watchdog.stdin is None:
            return
        try:
            self._watchdog.stdin.write(token.encode() + b"\n")
            self._watchdog.stdin.flush()
        except (BrokenPipeError, ValueError):
            self._watchdog = None

    def _close_watchdog(self) -> None:
        if self._watchdog is None:
            return
        watchdog, self._watchdog = self._watchdog, None
        with contextlib.suppress(OSError, ValueError):
            if watchdog.stdin is not None:
                watchdog.stdin.close()
        try:
            watchdog.wait(timeout=2)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait()


def _signal_name(signum: int | None) -> str:
    if signum is None:
        return "a signal"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def preflight(plan: LaunchPlan) -> None:
    """Refuse what would fail half-way: a busy port, an external engine that does not answer."""
    from agentcmd.errors import UnavailableError
    from agentcmd.supervisor.ports import ensure_port_free
    from agentcmd.supervisor.process import http_get_status

    if plan.engine is not None:
        ensure_port_free(plan.host, plan.engine_port, role="engine", flag="--engine-port")
    ensure_port_free(plan.host, plan.port, role="app server", flag="--port")
    if plan.engine is None and http_get_status(plan.engine_url + "/health", timeout=3.0) is None:
        raise UnavailableError(
            f"cannot reach the external engine at {plan.engine_url} (GET /health got no answer)",
            "start that server first, check --engine-url, or let agentcmd run one: '--engine embedded'",
            code="engine_unreachable")
