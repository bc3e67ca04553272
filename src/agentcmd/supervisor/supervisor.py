"""Start the engine and the app server, wait for both, watch them, stop them in order.

The shape follows huey's consumer: signal handlers only set flags and wake
the main loop; the main loop does the work. So a Ctrl-C at any moment is
handled the same way, and nothing is printed from inside a signal handler
(the sink's lock could be held by the very code the signal interrupted).

Startup: the engine is spawned, then the app (the embedded engine gets
``--passive-sync``: it never knocks on the app's port before the app
listens, so no start logs a sync warning); ``/health`` of each is polled
until 200, an early exit, a signal, or the deadline; then the supervisor
syncs the app (``PUT`` of its serve URL) and checks the engine's answer
names as many functions as the app serves, retrying until it does. Only
then "ready": an event sent at that moment starts its run.

Shutdown (docs/running.md): the engine first (it stops leasing work, records
the calls in flight as interrupted, exits 0), then the app (it stops its
steps' process groups and answers in-flight calls 503-interrupted); each
gets SIGTERM, a grace period, then SIGKILL, and every step is logged. A
second Ctrl-C skips the rest of the grace period.

Reload (``reload.py``): ``agentcmd dev`` watches the workflow files;
``agentcmd start`` reloads on SIGHUP (``agentcmd workflows reload`` asks the
app directly). Dev treats SIGHUP as the terminal going away: it stops.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
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
from agentcmd.mode import Mode
from agentcmd.supervisor.launch import ENGINE_COMMAND_ENV, LaunchPlan
from agentcmd.supervisor.logs import LogSink
from agentcmd.supervisor.process import ChildSpec, ManagedProcess, describe_returncode
from agentcmd.supervisor.reload import Reloads, WorkflowWatch, project_dir_of

EXIT_INTERRUPTED = 130
_WATCHDOG = Path(__file__).with_name("watchdog.py")
# SIGHUP: in dev the terminal went away; the children (own sessions) did not get it, so stop them.
# In production it asks for a reload of the workflows (like nginx), see reload.py.
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SYNC_RETRY_SECONDS = 0.2


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
        self._reload_asked = threading.Event()
        self._reloads: Reloads | None = None
        self._watch_files: WorkflowWatch | None = None

    @property
    def _reloads_on_sighup(self) -> bool:
        return self.plan.mode is Mode.PRODUCTION

    # Signals: flags only ----------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP and self._reloads_on_sighup and not self._stopping and self._signal is None:
            self._reload_asked.set()
            self._wake.set()
            return
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
            if self._watch_files is not None:
                self._watch_files.close()
            if self._reloads is not None:
                self._reloads.close()
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
        # asks wait for resume() at "ready"; in connect mode the worker reloads after the app (workermode.py)
        self._reloads = Reloads(plan.app_url, self.sink, self._reload_with_worker if plan.worker else None)
        project = project_dir_of(plan.app.argv)
        if plan.mode is Mode.DEV and project is not None:
            # Before the app reads the folder: nothing saved from here on can be missed.
            self._watch_files = WorkflowWatch(project, self._reloads.request, self.sink)
            self._watch_files.start()
        self.sink.info(f"Starting app server on {plan.app_url} (SDK at {plan.sdk_url})")
        self._spawn(plan.app)
        if not self._wait_ready(started) or not self._serve_workflows(started):
            self.sink.warning(f"interrupted by {_signal_name(self._signal)} during startup; stopping")
            return EXIT_INTERRUPTED
        self._reloads.resume()
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
                then = "the app, then the worker" if self.plan.worker is not None else "the app"
                self.sink.info(f"received {_signal_name(self._signal)}; stopping the engine, then {then}")
                return 0
            if self._reload_asked.is_set() and self._reloads is not None:
                self._reload_asked.clear()
                self._reloads.request("SIGHUP")
            self._check_exits("while running")
            self._wake.wait(0.5)  # woken at once by a signal or a child closing its output

    def _stop_all(self) -> None:
        # The engine first: it stops leasing and records in-flight calls as interrupted before
        # the app, stopped second, answers them 503-interrupted; nothing is recorded as a failure.
        for child in list(self._children):
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

    def _serve_workflows(self, started: float) -> bool:
        """HTTP mode: sync the app. Connect mode: start the worker, wait for its connection. False on a signal."""
        if self.plan.worker is None:
            return self._sync_app(started)
        worker = self._spawn(self.plan.worker)
        deadline = started + self.startup_timeout
        while not worker.ready_seen.is_set():
            self._wake.clear()
            if self._signal is not None:
                return False
            self._check_exits("during startup")
            if time.monotonic() >= deadline:
                raise SupervisorError(
                    f"the worker did not connect to the engine at {self.plan.engine_url} within "
                    f"{self.startup_timeout:g} s", "read the worker's and the engine's output above; if they are "
                    "only slow, raise --startup-timeout", code="sync_failed")
            self._wake.wait(self.poll_interval)
        if self._app_functions() == 0:
            self.sink.info("the app has no workflows yet: the worker connects once a workflow file is added "
                           "(.agentcmd/workflows) and reloaded")
        else:
            self.sink.info(f"the worker connected to the engine at {self.plan.engine_url} (worker mode connect)")
        return True

    def _reload_with_worker(self, app_url: str) -> dict[str, object]:
        """Connect mode's reload: the app server's list (the UI and API), then the worker's (SIGHUP)."""
        from agentcmd.supervisor.reload import post_reload

        result = post_reload(app_url)
        for child in self._children:
            if child.name == "worker" and child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGHUP)
        return result

    def _sync_app(self, started: float) -> bool:
        """Sync the app with the engine and check the engine took every function; False on a signal.

        ``PUT`` of the app's serve URL makes the SDK register its functions
        with the engine (its out-of-band sync); our engine answers with how
        many functions it now matches for the app, and has swapped them in
        before answering, so once that number is the app's, an event sent
        now starts its run. An engine that is still busy or unreachable is
        retried until the startup deadline; an engine that refuses the
        registration (a bad function, wrong keys) stops the start with its
        reason. An app without workflows is not synced (the SDK refuses an
        empty list): the log says how to add one.
        """
        engine = "the external engine" if self.plan.engine is None else "the engine"
        deadline = started + self.startup_timeout
        served = self._app_functions()
        if served == 0:
            project = project_dir_of(self.plan.app.argv)
            where = project / ".agentcmd" / "workflows" if project else Path(".agentcmd") / "workflows"
            how = ("'agentcmd dev' loads it within 2 s and syncs it with the engine"
                   if self.plan.mode is Mode.DEV else
                   f"then run 'agentcmd workflows reload' (or send SIGHUP to pid {os.getpid()}): the app loads it "
                   f"and syncs it with the engine without a restart")
            self.sink.info(f"the app has no workflows yet: add a file to {where}; {how}")
            return True
        while True:
            status, answer, body = self._put_sync()
            message = str(answer.get("error") or answer.get("message") or "") if answer else ""
            refused = bool(answer.get("error")) if answer else False
            if 200 <= status < 300 and not refused:
                taken = answer.get("functions") if answer else None
                if not isinstance(taken, int) or served is None or taken >= served:
                    self.sink.info(f"synced the app with {engine} at {self.plan.engine_url}"
                                   + (f" ({taken} of {served} workflows)" if isinstance(taken, int) else ""))
                    return True
                message = f"the engine took {taken} of the app's {served} workflows"
            elif (status and 400 <= status < 500) or refused:
                # The SDK relays the engine's refusal with its own 200: name the status only when it is not.
                shown = (message or body)[:300]
                shown = shown if 200 <= status < 300 else f"status {status}: {shown}"
                raise SupervisorError(
                    f"{engine} at {self.plan.engine_url} refused the app's sync ({shown})",
                    "fix what the message names (a workflow's configuration, or the keys both use), "
                    "then start again", code="sync_failed")
            if time.monotonic() >= deadline:
                raise SupervisorError(
                    f"could not sync the app with {engine} at {self.plan.engine_url} within "
                    f"{self.startup_timeout:g} s (last: status {status}: {(message or body)[:300]})",
                    "read the engine's and the app's output above; if they are only slow, raise "
                    "--startup-timeout", code="sync_failed")
            self._wake.clear()
            if self._signal is not None:
                return False
            self._check_exits("during startup")
            self._wake.wait(SYNC_RETRY_SECONDS)

    def _app_functions(self) -> int | None:
        """How many workflows the app serves (its /health), or None when it does not say."""
        url = self.plan.app.health_url
        if url is None:
            return None
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
        try:
            conn.request("GET", parts.path, headers={"Connection": "close"})
            health = json.loads(conn.getresponse().read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            conn.close()
        count = health.get("functions") if isinstance(health, dict) else None
        return count if isinstance(count, int) else None

    def _put_sync(self) -> tuple[int, dict[str, object] | None, str]:
        """``PUT`` the app's serve URL: (status, JSON body if an object, raw body)."""
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
        return status, answer if isinstance(answer, dict) else None, body

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
