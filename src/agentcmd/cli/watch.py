"""Following a run from the CLI: ``agentcmd runs watch RUN`` and ``agentcmd workflows run --wait``.

``follow_run`` reads the app API's live stream (``GET /api/runs/{id}/live``,
``cli/livestream.py``) and hands what comes to a display until the
stream's ``end``:

- ``agent`` events (an agent's messages, tool calls, results; a
  ``step.cli`` command's lines) as they arrive;
- ``run`` events (the run and its steps, with usage) when they change.

A stream that ends early (the server ends every stream after 300 s; a
dropped connection; an app restart) is opened again with ``Last-Event-ID``,
so nothing is shown twice or lost; after ``RECONNECT_FOR_S`` seconds
without a connection it gives up. An app server without the live route
(404, an agentcmd from before it) is followed by polling the run, as
``--wait`` did before, said once on stderr.

Three displays: ``RichDisplay`` on a terminal (the run's step table and a
status line with the running step, its time and cost, messages printed
above it as they come), ``PlainDisplay`` elsewhere (one line per event:
``cli/stepfeed.py`` for steps, ``cli/agentlines.py`` for the stream) and
``JsonDisplay`` (``runs watch --json``: one JSON object per line).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Protocol

import httpx

from agentcmd.cli.agentlines import agent_line, usage_text, what_and_detail
from agentcmd.cli.livestream import NoLiveStream, SseParser, read_events
from agentcmd.cli.stepfeed import StepFeed, step_key
from agentcmd.errors import AgentcmdError, UnavailableError

if TYPE_CHECKING:
    from rich.console import RenderableType

TERMINAL = ("Completed", "Failed", "Cancelled")
RECONNECT_FOR_S = 60.0
"""How long a lost live stream is retried before giving up (an app restart takes a few seconds)."""
READ_S = 60.0
"""A stream silent this long (the server sends a keepalive every 15 s) is taken as dropped."""
POLL_S = 0.3
NEEDS_ERROR = ("Failed", "Interrupted", "Cancelled")


class Display(Protocol):
    def run(self, run: dict[str, Any]) -> None: ...
    def agent(self, event: dict[str, Any]) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...


def _warn(text: str) -> None:
    from agentcmd.cli._console import warn

    warn(text)


class PlainDisplay:
    """One plain line per step change and per stream event, on ``out`` (see the module doc)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.feed = StepFeed()

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def run(self, run: dict[str, Any]) -> None:
        for line in self.feed.update(run):
            self._write(line)

    def agent(self, event: dict[str, Any]) -> None:
        line = agent_line(event)
        if line is not None:
            self._write(line)

    def note(self, text: str) -> None:
        _warn(text)

    def close(self) -> None:
        pass


class JsonDisplay:
    """``{"event": "agent"|"run"|"end", "data": ...}`` per line; a run only when what it shows changed."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._last = ""

    def emit(self, event: str, data: Any) -> None:
        self.out.write(json.dumps({"event": event, "data": data}, default=str, ensure_ascii=False) + "\n")
        self.out.flush()

    def run(self, run: dict[str, Any]) -> None:
        shown = json.dumps([run.get("status"), run.get("phase"), run.get("usage"),
                            [(step_key(s), s.get("status")) for s in run.get("steps") or []]], default=str)
        if shown != self._last:
            self._last = shown
            self.emit("run", run)

    def agent(self, event: dict[str, Any]) -> None:
        self.emit("agent", event)

    def note(self, text: str) -> None:
        _warn(text)

    def close(self) -> None:
        pass


def elapsed_text(seconds: float) -> str:
    """``12.3s``, ``4m 05s``, ``1h 02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def step_seconds(step: dict[str, Any], received: float, now_epoch: float, now: float) -> float | None:
    """A running step's time so far: from its start time, else its reported time plus the time since."""
    from agentcmd.workflows.steprecords import iso_ms

    started = iso_ms(step.get("started_at"))
    if started is not None:
        return max(0.0, now_epoch - started / 1000)
    ms = step.get("elapsed_ms")
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        return ms / 1000 + (now - received)
    return None


_KIND_STYLE = {"text": "", "tool_call": "bold cyan", "tool_result": "dim", "error": "bold red",
               "result": "green", "session": "dim", "output": "dim", "notice": "yellow", "dropped": "yellow"}


class RichDisplay:
    """On a terminal: the step table and a status line stay at the bottom; events print above them."""

    def __init__(self, table: Callable[[dict[str, Any]], RenderableType]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.table = table  # cli/runs.py run_table, handed in (this module does not import the commands)
        self.console = Console()
        self.state: dict[str, Any] = {}
        self.received = time.monotonic()
        self.usage: dict[str, dict[str, Any]] = {}  # step id -> its latest running usage
        self.live = Live(self, console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def run(self, run: dict[str, Any]) -> None:
        self.state, self.received = run, time.monotonic()
        self.live.refresh()

    def agent(self, event: dict[str, Any]) -> None:
        from rich.text import Text

        kind = str(event.get("kind") or "")
        if isinstance(event.get("usage"), dict):
            self.usage[str(event.get("step_id"))] = event["usage"]
        shown = what_and_detail(event)
        if shown is None:
            return
        what, detail = shown
        if kind == "text":
            detail = str(event.get("text") or "").strip()  # on a terminal the message keeps its lines
        style = _KIND_STYLE.get(kind, "")
        if kind in ("tool_result", "result") and event.get("status") == "error":
            style = "red"
        line = Text.assemble((f"{event.get('step_id') or '?'}  ", "dim"), (what, style or "bold"),
                             ("  " if detail else "", ""), (detail, style if kind != "text" else ""))
        self.live.console.print(line)  # Text, never markup: an agent's "[bold]" stays literal

    def note(self, text: str) -> None:
        self.live.console.print(f"warning: {text}", style="yellow", markup=False, highlight=False)

    def status_line(self) -> RenderableType:
        from rich.text import Text

        now, epoch = time.monotonic(), time.time()
        running = [s for s in self.state.get("steps") or [] if s.get("status") == "Running"]
        total = usage_text(self.state.get("usage"))
        if not running:
            return Text(f"run {self.state.get('status') or '...'}" + (f"  {total}" if total else ""), style="dim")
        parts: list[tuple[str, str] | str] = []
        for step in running:
            key = step_key(step)
            seconds = step_seconds(step, self.received, epoch, now)
            parts += [("running ", "cyan"), (key, "bold")]
            if seconds is not None:
                parts.append(f"  {elapsed_text(seconds)}")
            if key in self.usage:
                parts.append((f"  {usage_text(self.usage[key])}", "dim"))
            parts.append("   ")
        if total and len(running) > 1:
            parts.append((f"run: {total}", "dim"))  # parallel agents: their sum
        return Text.assemble(*parts)

    def __rich__(self) -> RenderableType:
        from rich.console import Group

        if not self.state:
            return self.status_line()
        return Group(self.table(self.state), self.status_line())

    def close(self) -> None:
        self.live.stop()


def display_for(mode: str, out: IO[str], table: Callable[[dict[str, Any]], RenderableType]) -> Display:
    """``rich`` (``table(run)`` above the status line), ``plain`` (lines on ``out``) or ``json`` (JSON lines)."""
    if mode == "rich":
        return RichDisplay(table)
    if mode == "json":
        return JsonDisplay(out)
    return PlainDisplay(out)


def _with_short_ids(run: dict[str, Any]) -> dict[str, Any]:
    """A live ``run`` event's steps carry ``step_id``/``name``/``phase``; the views also want ``id``."""
    steps = []
    for step in run.get("steps") or []:
        if "id" not in step:
            name, phase = str(step.get("name") or step.get("step_id") or ""), step.get("phase")
            short = name[len(phase) + 1:] if phase and name.startswith(f"{phase}/") else name
            step = {**step, "id": short}
        steps.append(step)
    return {**run, "steps": steps}


def _timeout_error(run_id: str, timeout: float, state: dict[str, Any]) -> AgentcmdError:
    return AgentcmdError(f"run {run_id} did not finish within {timeout:g}s (it is {state.get('status')})",
                         f"it keeps running; follow it with 'agentcmd runs watch {run_id}'",
                         code="wait_timeout", exit_code=1)


class _Follower:
    def __init__(self, client: Any, run_id: str, display: Display, timeout: float | None) -> None:
        self.client, self.run_id, self.display, self.timeout = client, run_id, display, timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.path = f"/api/runs/{run_id}"
        self.state: dict[str, Any] = {}

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            assert self.timeout is not None
            raise _timeout_error(self.run_id, self.timeout, self.state)

    def view(self) -> dict[str, Any]:
        run: dict[str, Any] = self.client.get(self.path)["data"]
        return run

    def show_run(self, run: dict[str, Any]) -> None:
        self.state = run
        self.display.run(run)

    def on_run_event(self, data: dict[str, Any]) -> None:
        """A live run event; a step that just failed gets the full view once (the event has no errors)."""
        before = {step_key(s): s.get("status") for s in self.state.get("steps") or []}
        merged = _with_short_ids({**self.state, **data})
        ended_badly = any(s.get("status") in NEEDS_ERROR and before.get(step_key(s)) != s.get("status")
                          and not s.get("error") for s in merged["steps"])
        if ended_badly:
            merged = {**self.view(), "usage": data.get("usage", self.state.get("usage"))}
        self.show_run(merged)

    def stream(self) -> None:
        parser = SseParser()
        lost_since: float | None = None
        live_path = f"{self.path}/live"
        while True:
            read_s = READ_S if self.deadline is None else max(0.05, min(READ_S, self.deadline - time.monotonic()))
            try:
                for event in read_events(self.client, live_path, parser, read_timeout=read_s):
                    if lost_since is not None:
                        lost_since = None
                        self.display.note("live stream back; going on from where it broke off")
                    if event.event in ("agent", "run", "end"):
                        try:
                            data = json.loads(event.data)
                        except ValueError:
                            data = None
                        if isinstance(data, dict):
                            if event.event == "agent":
                                self.display.agent(data)
                            elif event.event == "run":
                                self.on_run_event(data)
                        if event.event == "end":
                            return
                    self.check_deadline()
                continue  # the server ended the stream (its 300 s limit, a restart): open it again at once
            except httpx.HTTPError as exc:
                self.check_deadline()
                now = time.monotonic()
                if lost_since is None:
                    lost_since = now
                    self.display.note(f"lost the live stream of run {self.run_id} ({type(exc).__name__}); "
                                      "reconnecting")
                elif now - lost_since > RECONNECT_FOR_S:
                    raise UnavailableError(
                        f"lost the live stream of run {self.run_id} and could not reconnect for "
                        f"{RECONNECT_FOR_S:g}s ({type(exc).__name__})",
                        f"is the app server still running? the run goes on; 'agentcmd runs watch {self.run_id}' "
                        "follows it again", code="app_unreachable") from None
                time.sleep(min(2.0, (parser.retry_ms or 1000) / 1000))

    def poll(self) -> None:
        while self.state.get("status") not in TERMINAL:
            self.check_deadline()
            time.sleep(POLL_S)
            self.show_run(self.view())

    def follow(self) -> dict[str, Any]:
        self.show_run(self.view())
        try:
            self.stream()
        except NoLiveStream:
            self.display.note(f"the app server has no live stream (GET {self.path}/live: 404, an agentcmd "
                              "from before it); following the run by polling, without the agents' messages")
            self.poll()
        final = self.view()
        self.show_run(final)
        return final


def follow_run(client: Any, run_id: str, display: Display, *, timeout: float | None = None) -> dict[str, Any]:
    """Show run ``run_id`` on ``display`` until it ends; its final view (``GET /api/runs/{id}``).

    ``timeout`` seconds: then a ``wait_timeout`` error (exit 1); the run goes on.
    """
    return _Follower(client, run_id, display, timeout).follow()


def outcome_error(run: dict[str, Any]) -> AgentcmdError | None:
    """None when the run completed; else the ``run_failed`` error (exit 1) with the run's own error."""
    status = run.get("status")
    if status == "Completed":
        return None
    message = None
    for candidate in (run.get("output"), run.get("error")):  # engines put the SDK's error body in either
        if isinstance(candidate, dict) and candidate.get("message"):
            message = f"{candidate.get('name') or 'Error'}: {candidate['message']}"
            break
        if isinstance(candidate, str) and candidate and message is None:
            message = candidate
    return AgentcmdError(f"run {run.get('run_id')} {str(status).lower()}" + (f": {message}" if message else ""),
                         f"see 'agentcmd runs show {run.get('run_id')}'", code="run_failed", exit_code=1)


def display_mode(as_json: bool) -> str:
    """``json`` when asked, ``rich`` when stdout is a terminal, else ``plain``."""
    if as_json:
        return "json"
    return "rich" if sys.stdout.isatty() else "plain"
