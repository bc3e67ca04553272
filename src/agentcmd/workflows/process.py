"""Child processes of steps: run without blocking the loop, stop as a group.

Every command a step runs (shell, agent CLI, git) starts in its own session
(``start_new_session=True``), so the process *group* can be signalled: a
shell's grandchildren (``pytest`` under ``sh -c``, an agent's tool calls)
die with it. Stopping is SIGTERM to the group, a grace period, then
SIGKILL.

Running processes are registered per run id, so the app server can stop
what a cancelled run is doing (``terminate_run``), and all together, so a
shutting-down app server stops every step's group (``interrupt_all``) and
leaves no orphan behind (``stop_all``). Output is kept as a
bounded tail: an agent or a test suite can print megabytes, and a step's
result becomes a memo the engine stores and resends on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agentcmd.workflows.sandbox import step_sandbox

OUTPUT_LIMIT = 64 * 1024
"""Bytes of stdout/stderr kept per command (the tail; the total is reported)."""

SECRET_ENV_VARS = frozenset({
    "INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_EVENT_KEY",
    "AGENTCMD_SIGNING_KEY", "AGENTCMD_EVENT_KEY", "AGENTCMD_DASHBOARD_TOKEN",
})
"""The app server's keys: never inherited by step commands (agents run arbitrary tools).
A step that needs one passes it explicitly with ``env=``."""

SHUTDOWN_GRACE_SECONDS = 2.0
"""SIGTERM-to-SIGKILL time for commands stopped because the app server is shutting down."""

DRAIN_SECONDS = 2.0
"""After the command exits, how long to keep reading pipes a background child may hold open."""

GRACE_SECONDS = 5.0
"""Time between SIGTERM and SIGKILL when a command is stopped."""


@dataclass(frozen=True)
class ProcessResult:
    """What a finished (or stopped) command left behind."""

    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    duration_s: float
    timed_out: bool = False
    cancelled: bool = False
    interrupted: bool = False
    """The app server is shutting down and stopped the command: the step must run again, not fail."""
    stopped: bool = False
    """The caller asked for the stop (``run_process(stop=...)``), e.g. an agent over its budget."""


class _Tail:
    """Keep the last ``limit`` bytes of a stream and count all of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._buf += chunk
        if len(self._buf) > self.limit:
            del self._buf[: len(self._buf) - self.limit]

    def text(self) -> str:
        body = self._buf.decode("utf-8", errors="replace")
        if self.total > self.limit:
            return f"[... {self.total - self.limit} earlier bytes of {self.total} truncated ...]\n{body}"
        return body


LINE_LIMIT = 1024 * 1024
"""Longest line handed to ``on_line``; a longer one is cut there (an agent can print a whole file as one line)."""

LineCallback = Callable[[str, str], None]
"""``on_line(stream, line)``: ``stream`` is ``"stdout"`` or ``"stderr"``, ``line`` has no newline."""


class _Lines:
    """Split a byte stream into lines for ``on_line`` as it arrives; the last partial line at the end."""

    def __init__(self, name: str, on_line: LineCallback) -> None:
        self.name = name
        self.on_line = on_line
        self._buf = bytearray()
        self._cut = False

    def _emit(self, raw: bytes) -> None:
        with contextlib.suppress(Exception):  # a broken consumer never breaks the command
            self.on_line(self.name, raw.decode("utf-8", errors="replace").rstrip("\r"))

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        while (nl := self._buf.find(b"\n")) >= 0:
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if self._cut:
                self._cut = False  # the rest of a line already cut at LINE_LIMIT
                continue
            self._emit(line)
        if len(self._buf) > LINE_LIMIT:
            if not self._cut:
                self._emit(bytes(self._buf[:LINE_LIMIT]))
            self._cut = True
            self._buf.clear()

    def close(self) -> None:
        if self._buf and not self._cut:
            self._emit(bytes(self._buf))
        self._buf.clear()


async def _pump(stream: asyncio.StreamReader | None, tail: _Tail, lines: _Lines | None = None) -> None:
    if stream is None:
        return
    try:
        while chunk := await stream.read(65536):
            tail.feed(chunk)
            if lines is not None:
                lines.feed(chunk)
    finally:
        if lines is not None:
            lines.close()


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Wait for the process itself to exit.

    ``Process.wait()`` also waits for its pipes to close, which a background
    grandchild (``server &``) can hold open for ever; the exit code is known
    as soon as the child is reaped, so poll that (cheap: at most 10 times a
    second once the command has run for a while).
    """
    delay = 0.005
    while proc.returncode is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


_running: dict[str, set[asyncio.subprocess.Process]] = {}
_cancelled: set[str] = set()
_all: set[asyncio.subprocess.Process] = set()
_shutdown = {"on": False}
_stopping: set[asyncio.Task[None]] = set()


def _signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def stop_group(proc: asyncio.subprocess.Process, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM the process group, wait up to ``grace`` seconds, then SIGKILL it."""
    if proc.returncode is None:
        _signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), grace)
    # Children that ignored SIGTERM (or outlived the leader) get SIGKILL too.
    _signal_group(proc, signal.SIGKILL)
    if proc.returncode is None:
        await proc.wait()


def terminate_run(run_id: str) -> int:
    """Stop every command that ``run_id`` is running; return how many there were.

    Called when a run is cancelled. The step that owned the command sees
    ``ProcessResult.cancelled`` and reports itself cancelled, not failed.
    """
    _cancelled.add(run_id)
    procs = list(_running.get(run_id, ()))
    for proc in procs:
        asyncio.get_running_loop().create_task(stop_group(proc))
    return len(procs)


def shutting_down() -> bool:
    return _shutdown["on"]


def interrupt_all(grace: float = SHUTDOWN_GRACE_SECONDS) -> int:
    """The app server is shutting down: stop every step command's group; return how many.

    From now on a command that starts is stopped at once, and every result
    says ``interrupted``: the step runs again when the app is back.
    """
    _shutdown["on"] = True
    procs = list(_all)
    for proc in procs:
        task = asyncio.get_running_loop().create_task(stop_group(proc, grace))
        _stopping.add(task)
        task.add_done_callback(_stopping.discard)
    return len(procs)


def kill_all_now() -> int:
    """The process exits this instant (a connect worker's second Ctrl-C): SIGKILL every step's group, synchronously,
    so no step outlives it and none gets to report a result; return how many."""
    _shutdown["on"] = True
    procs = list(_all)
    for proc in procs:
        if proc.returncode is None:
            _signal_group(proc, signal.SIGKILL)
    return len(procs)


async def stop_all(grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
    """Stop every tracked group and wait until each is gone (the last thing before the app exits)."""
    procs = list(_all)
    if procs:
        await asyncio.gather(*(stop_group(p, grace) for p in procs), return_exceptions=True)
    _all.difference_update(procs)


def reset_shutdown() -> None:
    """For an app server created again in the same process (tests)."""
    _shutdown["on"] = False


def is_cancelled(run_id: str | None) -> bool:
    return run_id is not None and run_id in _cancelled


def running_count(run_id: str) -> int:
    return len(_running.get(run_id, ()))


async def _spawn(command: str | Sequence[str], cwd: str | os.PathLike[str] | None,
                 env: Mapping[str, str] | None, piped_stdin: bool) -> asyncio.subprocess.Process:
    """Start ``command`` in its own session, without the keys in its environment, sandboxed."""
    full_env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV_VARS}
    full_env.update(env or {})
    common = {
        "cwd": None if cwd is None else os.fspath(cwd),
        "env": full_env,
        "stdin": asyncio.subprocess.PIPE if piped_stdin else asyncio.subprocess.DEVNULL,
        "stdout": asyncio.subprocess.PIPE,
        "stderr": asyncio.subprocess.PIPE,
        "start_new_session": True,
    }
    sandbox = await asyncio.to_thread(step_sandbox)  # the config file (keys) out of the step's reach
    try:
        if isinstance(command, str):
            return await asyncio.create_subprocess_shell(command, **common,  # type: ignore[arg-type]
                                                         preexec_fn=sandbox.preexec)
        return await asyncio.create_subprocess_exec(*command, **common,  # type: ignore[arg-type]
                                                    preexec_fn=sandbox.preexec)
    finally:
        sandbox.close()


def _track(proc: asyncio.subprocess.Process, run_id: str | None, on_spawn: Callable[[int], None] | None) -> None:
    """Register a started process (shutdown and cancel find it); stop it at once if shutdown began."""
    _all.add(proc)
    if run_id is not None:
        _running.setdefault(run_id, set()).add(proc)
    if on_spawn is not None:
        with contextlib.suppress(Exception):
            on_spawn(proc.pid)
    if _shutdown["on"]:
        asyncio.get_running_loop().create_task(stop_group(proc, SHUTDOWN_GRACE_SECONDS))


def _untrack(proc: asyncio.subprocess.Process, run_id: str | None) -> None:
    if proc.returncode is not None:  # else a stop is still under way: stop_all waits for it
        _all.discard(proc)
    if run_id is not None:
        group = _running.get(run_id)
        if group is not None:
            group.discard(proc)
            if not group:
                _running.pop(run_id, None)


async def _exited_or_stopped(proc: asyncio.subprocess.Process, stop: asyncio.Event | None) -> None:
    """Wait for the exit, or for ``stop`` (then the caller stops the group: TimeoutError)."""
    if stop is None:
        await _exited(proc)
        return
    exited = asyncio.ensure_future(_exited(proc))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
        stopped.cancel()
    if proc.returncode is None:
        raise TimeoutError


async def _communicate(proc: asyncio.subprocess.Process, stdin: bytes | None, out: _Tail, err: _Tail,
                       timeout: float | None, grace: float, on_line: LineCallback | None = None,
                       stop: asyncio.Event | None = None) -> bool:
    """Feed stdin, read both pipes, wait for the exit (stopping the group past ``timeout`` or on
    ``stop``): was it stopped by us?"""
    timed_out = False
    if stdin is not None and proc.stdin is not None:
        proc.stdin.write(stdin)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await proc.stdin.drain()
        proc.stdin.close()
    out_lines = _Lines("stdout", on_line) if on_line is not None else None
    err_lines = _Lines("stderr", on_line) if on_line is not None else None
    pumps = asyncio.gather(_pump(proc.stdout, out, out_lines), _pump(proc.stderr, err, err_lines))
    try:
        await asyncio.wait_for(_exited_or_stopped(proc, stop), timeout)
    except TimeoutError:
        timed_out = True
        await stop_group(proc, grace)
    try:
        await asyncio.wait_for(pumps, DRAIN_SECONDS)
    except TimeoutError:
        # A background child (``server &``) still holds the pipes open; the command itself is
        # done, so stop reading (wait_for cancelled the pumps) and close our ends of the pipes.
        # The child keeps running, untracked: starting it was the command's choice.
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()
    return timed_out


async def run_process(
    command: str | Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    run_id: str | None = None,
    stdin: bytes | None = None,
    limit: int = OUTPUT_LIMIT,
    grace: float = GRACE_SECONDS,
    on_spawn: Callable[[int], None] | None = None,
    on_line: LineCallback | None = None,
    stop: asyncio.Event | None = None,
) -> ProcessResult:
    """Run ``command`` (a string goes through ``/bin/sh``, a list is exec'd).

    Raises ``FileNotFoundError`` when an exec'd program does not exist; a
    shell reports that as exit code 127 instead. A timeout stops the group
    and returns ``timed_out=True`` with exit code -SIGTERM/-SIGKILL.
    ``on_spawn(pid)`` is called once the process exists (the step records its pid).
    ``on_line(stream, line)`` is called on the loop for every line of either stream as it
    arrives (agents' streamed events, a command's live output), before the command ends.
    Setting ``stop`` (from ``on_line``: a budget passed) stops the group like a timeout;
    the result then says ``stopped=True`` rather than ``timed_out``.
    """
    started = time.monotonic()
    proc = await _spawn(command, cwd, env, piped_stdin=stdin is not None)
    _track(proc, run_id, on_spawn)
    out, err = _Tail(limit), _Tail(limit)
    try:
        timed_out = await _communicate(proc, stdin, out, err, timeout, grace, on_line, stop)
    except (asyncio.CancelledError, Exception):
        # The request itself was cancelled (server shutdown): never leave the group behind.
        # SIGTERM goes out before the first await; the supervisor's own grace is short, so is ours.
        await asyncio.shield(stop_group(proc, min(grace, SHUTDOWN_GRACE_SECONDS)))
        raise
    finally:
        _untrack(proc, run_id)
    code = proc.returncode if proc.returncode is not None else -1
    stopped = stop is not None and stop.is_set() and timed_out
    return ProcessResult(
        exit_code=code,
        stdout=out.text(),
        stderr=err.text(),
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        duration_s=round(time.monotonic() - started, 3),
        timed_out=timed_out and not stopped,
        stopped=stopped,
        cancelled=is_cancelled(run_id),
        interrupted=_shutdown["on"] and not timed_out,
    )
