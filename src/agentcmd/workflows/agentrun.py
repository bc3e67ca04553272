"""One attempt of an agent step, streamed: run the CLI, parse its lines as they come, keep them.

``step.agent`` (``steps.py``) calls ``run_agent``. The CLI runs in its
streaming mode; every stdout line goes through the CLI's ``StreamParser``
(``agentstream.py``) and every resulting event into the run's stream store
(``streamlog.py``) the moment it is read, with the time it was read. The
session id goes into the step's stream meta as soon as the CLI reports it
(in a worker thread: the loop never waits on the disk), so a re-run after a
crash can continue that session. Usage events go to ``on_usage`` (the budget
watch): setting ``stop`` there stops the process group mid-stream.

A CLI version without streaming rejects the flag at once; the attempt then
runs again in the old one-shot mode, which is remembered per executable for
the life of the process (``agents.mark_no_streaming`` logs it once) and said
in the stream as a ``notice``. In that mode stderr lines (and codex's and
gemini's plain stdout) are still kept as ``output`` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agentcmd.workflows import agents, streamlog
from agentcmd.workflows.agents import STREAM_FLAGS, AgentAdapter
from agentcmd.workflows.agentstream import FinalResult, StreamParser
from agentcmd.workflows.process import LineCallback, ProcessResult

OUTPUT_TEXT_LIMIT = 16_000
"""Characters of one plain output line kept in the stream."""


class Execute(Protocol):
    """Runs one argv as the step's process group (``WorkflowSteps._exec`` with the step's cwd, env, timeout)."""

    def __call__(self, argv: list[str], *, stdin: bytes | None, on_line: LineCallback | None,
                 stop: asyncio.Event | None) -> Awaitable[ProcessResult]: ...


async def open_log(data_dir: Path, run_id: str) -> streamlog.StreamLog | None:
    """The run's stream store, ready to append without touching the disk; None when it cannot be kept."""
    try:
        return await streamlog.stream_log(data_dir, run_id).ready()
    except (streamlog.StreamError, OSError):
        return None


class AgentStream:
    """One attempt's live events: parse, stamp, store, and note the session id in the step meta."""

    def __init__(self, log: streamlog.StreamLog | None, data_dir: Path, run_id: str, step_id: str, attempt: int,
                 agent: str, parser: StreamParser, on_usage: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.log, self.data_dir, self.run_id = log, data_dir, run_id
        self.step_id, self.attempt, self.agent = step_id, attempt, agent
        self.parser = parser
        self.on_usage = on_usage
        self.streaming = True
        self.plain_stdout = False
        self.appended = 0
        self._meta_tasks: list[asyncio.Task[None]] = []

    def append(self, event: dict[str, Any], ts: float) -> None:
        self.appended += 1
        if self.log is not None:
            self.log.append(self.step_id, self.attempt, {**event, "ts": ts})

    def on_line(self, stream: str, line: str) -> None:
        """``run_process``'s line callback: runs on the loop for each line as it arrives."""
        ts = round(time.time(), 3)
        if stream != "stdout" or not self.streaming:
            if stream == "stdout" and not self.plain_stdout:
                return   # claude's one JSON document in the old mode: read when the process ends
            if line.strip():
                self.append(self.parser.event("output", text=line[:OUTPUT_TEXT_LIMIT], stream=stream), ts)
            return
        for event in self.parser.feed(line):
            kind = event["kind"]
            if kind == "session" and event.get("session_id"):
                self._write_meta(session_id=event["session_id"], agent=self.agent, attempt=self.attempt,
                                 ended=False)
            if kind in ("usage", "result") and event.get("usage") and self.on_usage is not None:
                self.on_usage(event["usage"])
            self.append(event, ts)

    def notice(self, text: str) -> None:
        self.append(self.parser.event("notice", text=text), round(time.time(), 3))

    def _write_meta(self, **fields: Any) -> None:
        if self.log is None:
            return
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(streamlog.set_step_meta, self.data_dir, self.run_id, self.step_id, **fields))
        self._meta_tasks.append(task)

    async def close(self) -> None:
        """Wait for the meta writes and mark the step's stream ended (this attempt is over)."""
        self._write_meta(ended=True, agent=self.agent, attempt=self.attempt)
        for task in self._meta_tasks:
            with contextlib.suppress(OSError, ValueError, streamlog.StreamError):
                await task
        self._meta_tasks.clear()


@dataclass
class AgentOutcome:
    """What one attempt produced: the process result and what its output said."""

    res: ProcessResult
    text: str
    parsed: Any
    session_id: str | None
    streamed: bool
    final: FinalResult = field(default_factory=FinalResult)

    @property
    def usage(self) -> dict[str, Any]:
        return self.final.usage.to_json()


async def run_agent(adapter: AgentAdapter, exe: str, prompt: str, *, model: str | None, resume: str | None,
                    extra: list[str], stream: AgentStream, execute: Execute,
                    stop: asyncio.Event | None = None) -> AgentOutcome:
    """Run the agent once (streaming when its CLI can), feeding ``stream`` as lines arrive.

    Raises ``AgentcmdError``s of ``adapter.command`` (bad model, session id, too long a prompt).
    """
    if not agents.no_streaming(exe):
        argv, stdin = adapter.command(exe, prompt, model=model, resume=resume, extra=extra, stream=True)
        res = await execute(argv, stdin=stdin, on_line=stream.on_line, stop=stop)
        if not adapter.rejected_streaming(res.exit_code, res.stderr, stream.parser.result.events):
            final = stream.parser.final()
            return AgentOutcome(res, final.text, final.json, final.session_id or resume, True, final)
        agents.mark_no_streaming(adapter.name, exe, res.stderr)
    stream.streaming = False
    stream.plain_stdout = not adapter.json_output
    stream.notice(f"{adapter.name} does not stream here (no {' '.join(STREAM_FLAGS[adapter.name])}); "
                  "running without live output")
    argv, stdin = adapter.command(exe, prompt, model=model, resume=resume, extra=extra, stream=False)
    res = await execute(argv, stdin=stdin, on_line=stream.on_line, stop=stop)
    text, parsed, session = adapter.parse(res.stdout)
    final = FinalResult(text=text, json=parsed, session_id=session or resume)
    if isinstance(parsed, dict):   # claude's one-shot result has the same usage fields as its stream's
        for event in stream.parser.feed(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""):
            if event["kind"] == "result" and event.get("usage") and stream.on_usage is not None:
                stream.on_usage(event["usage"])
            stream.append(event, round(time.time(), 3))
        final.usage = stream.parser.result.usage
        final.is_error = parsed.get("is_error") is True
        final.model = stream.parser.result.model
    return AgentOutcome(res, text, parsed, session or resume, False, final)
