"""An interrupted agent step continues its session instead of starting from nothing.

An agent step can run for many minutes. When the app server stops under it
(a restart, a crash, a SIGKILL of ``agentcmd start``), the engine calls the
step again, and a fresh agent would redo everything. But the agent CLI keeps
its session on disk, and ``step.agent`` streams the session id into the
stream store's step meta (``streamlog.step_meta``) as soon as the CLI
reports it. So the re-run resumes that session (claude ``--resume ID``,
codex ``exec resume ID``, gemini ``--resume ID``) with a short note in front
of the prompt saying it was interrupted.

When (``decide``):

* the step was given ``resume=`` explicitly: that session is kept, nothing
  is decided here;
* the previous attempt of this step was *interrupted*, not failed: its step
  record (``steprecords.py``) ends ``interrupted``, or is still ``running``
  from an earlier app server (a crash or SIGKILL left no end line). A step
  that failed, timed out, was cancelled or went over its budget starts fresh:
  its session is what went wrong;
* the meta names a session of the same agent, streamed by that same attempt
  (its ``attempt`` equals the interrupted record's): a session id left by an
  earlier, failed attempt is not continued.

The decision reads two small files; ``for_step`` does it off the event loop.
``resume_interrupted`` is the one call ``step.agent`` makes: it returns the
session and prompt to run with, and leaves a ``notice`` in the step's stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentcmd.workflows import steprecords, streamlog

MetaReader = Callable[[Path, str, str], Mapping[str, Any] | None]
"""``streamlog.step_meta(data_dir, run_id, step_id)``: the step's stream meta, or None."""


@dataclass(frozen=True)
class Resumption:
    """The session to continue and the note that says why."""

    session_id: str
    note: str

    def prompt(self, prompt: str) -> str:
        """The prompt of the resumed call: the note, then the original request."""
        return f"{self.note}\n\n{prompt}"


def note_for(started_at: str | None) -> str:
    when = f" (it started at {started_at})" if started_at else ""
    return ("[agentcmd] Your previous run of this step was interrupted before it finished"
            f"{when}: the app running it stopped. Continue the task from where you left off, without "
            "redoing work that is already done, and give your final answer as before. The original "
            "request follows.")


def step_attempts(data_dir: Path, run_id: str, step_id: str) -> list[dict[str, Any]]:
    """Every attempt of ``step_id`` recorded in the run's step records, oldest first (blocking).

    ``steprecords.read_sync`` keeps only the latest line of each step; here
    each attempt (one app server's start of the step) keeps its own last line.
    """
    try:
        text = steprecords.records_file(data_dir, run_id).read_text(errors="replace")
    except (OSError, ValueError):
        return []
    attempts: dict[tuple[str, str], dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if isinstance(rec, dict) and rec.get("step_id") == step_id:
            attempts[(str(rec.get("boot")), str(rec.get("started_at")))] = rec
    return list(attempts.values())


def _previous(attempts: list[dict[str, Any]], boot_id: str) -> dict[str, Any] | None:
    """The last attempt before the one running now (this app's ``running`` record, if written yet)."""
    earlier = [a for a in attempts if not (a.get("status") == steprecords.RUNNING and a.get("boot") == boot_id)]
    return earlier[-1] if earlier else None


def decide(agent: str, resume: str | None, meta: Mapping[str, Any] | None, attempts: list[dict[str, Any]],
           boot_id: str) -> Resumption | None:
    """The session to continue, or None to start fresh (see the module docstring)."""
    if resume is not None or not meta:
        return None
    previous = _previous(attempts, boot_id)
    if previous is None:
        return None
    status = steprecords.effective(previous, boot_id)["status"]
    if status != steprecords.INTERRUPTED:
        return None
    session = meta.get("session_id")
    if not isinstance(session, str) or not session or session.startswith("-"):
        return None
    if meta.get("agent") not in (None, agent):
        return None
    if meta.get("attempt") is not None and previous.get("attempt") is not None \
            and meta.get("attempt") != previous.get("attempt"):
        return None
    return Resumption(session, note_for(previous.get("started_at")))


async def for_step(data_dir: Path, run_id: str, step_id: str, *, agent: str, resume: str | None, boot_id: str,
                   read_meta: MetaReader) -> Resumption | None:
    """``decide`` for one step, its two reads in a worker thread (the loop never waits on the disk)."""
    if resume is not None:
        return None

    def read() -> Resumption | None:
        try:
            meta = read_meta(data_dir, run_id, step_id)
        except (OSError, ValueError):
            meta = None
        return decide(agent, resume, meta, step_attempts(data_dir, run_id, step_id), boot_id)

    return await asyncio.to_thread(read)


@dataclass(frozen=True)
class AgentCall:
    """What ``step.agent`` runs with: the session to resume, the prompt, and the continued session."""

    resume: str | None
    prompt: str
    resumed_session: str | None = None


async def resume_interrupted(data_dir: Path, run_id: str, step_id: str, attempt: int, *, agent: str,
                             resume: str | None, prompt: str, boot_id: str) -> AgentCall:
    """The call to make for this attempt of an agent step (see the module docstring).

    When a session is continued, the step's stream gets a ``notice``
    "resuming interrupted session ID" (the live views and the transcript show it).
    """
    found = await for_step(data_dir, run_id, step_id, agent=agent, resume=resume, boot_id=boot_id,
                           read_meta=streamlog.step_meta)
    if found is None:
        return AgentCall(resume, prompt)
    try:
        log = await streamlog.stream_log(data_dir, run_id).ready()   # its first read off the loop
        log.append(step_id, attempt, {
            "agent": agent, "kind": "notice", "session_id": found.session_id,
            "text": f"resuming interrupted session {found.session_id}"})
    except (streamlog.StreamError, OSError):
        pass  # the stream is a view: a disk problem never keeps the agent from its session
    return AgentCall(found.session_id, found.prompt(prompt), found.session_id)
