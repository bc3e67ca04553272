"""Resuming a failed or cancelled run from its first step that did not complete.

``POST /v1/runs/{id}/resume`` (``api/resume.py``), the dashboard's Resume
button and the app's ``/api/runs/{id}/resume`` all end here, through
``Commands.resume_run``. A resume is a *new* run of the same function with
the same triggering event(s), like a replay (``flow/replay.py``), with one
difference: before its first call, its ``steps`` table gets a copy of every
step row of the old run that *completed*. The executor sends those memos
to the SDK with every call, so the SDK skips those steps (their stored
results come back as the step's value) and calls only what did not
complete: the step that failed (its error memo is not copied), the steps
after it, and any step the code has gained since. What this means for
each kind of step:

* ``step.run`` that completed: kept, not called again;
* a step that failed (its retries exhausted), or whose error the workflow
  caught: its row is ``failed``, not copied, so it runs again;
* parallel steps: each completed one is kept; the others are planned again
  by the SDK as usual;
* ``step.sleep`` and ``step.wait_for_event`` that ended (the sleep fired,
  the event came or the wait timed out): kept, not waited again; a wait
  still pending when the run failed or was cancelled waits again from now;
* ``step.invoke``: a completed invoke keeps its result (the invoked run is
  not started again); an invoke whose function failed or timed out is a
  ``failed`` row, so it invokes again.

The event: the same event row (same internal id) unless replacement
``data`` is given; then one new event row with the same name and that
data is stored without dispatch (it starts no other function) and the new
run is created from it. Either way the new run skips event-time flow
control (it was decided once), like a replay; a paused function or a
concurrency limit still holds it. It is a top-level run: an invoked run's
parent is not told about the resume.

Everything (checks, the new run, its kept steps, the link
``runs.resume_of`` and a history entry on both runs) is one write
transaction: two concurrent resumes of the same run cannot both succeed.
A run that was already resumed is refused (resume the newer run instead),
so a double click starts one run, not two.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import TYPE_CHECKING, Any

from ulid import ULID

from agentcmd.engine.store import resume as resume_store
from agentcmd.engine.store import runs
from agentcmd.engine.store.events import insert_events_txn
from agentcmd.engine.store.models import NewEvent, RunStatus
from agentcmd.errors import AgentcmdError, InputError, NotFoundError

if TYPE_CHECKING:
    from agentcmd.engine.flow import RunSpecs
    from agentcmd.engine.functions import Function
    from agentcmd.engine.store import Store

RESUMABLE = (RunStatus.FAILED.value, RunStatus.CANCELLED.value)


class ResumeInputError(InputError):
    """A resume request whose body the engine cannot use."""

    code = "invalid_resume"
    http_status = 400
    fix_hint = 'send no body, {} or {"data": {...}} (the replacement event data)'


class NotResumableError(AgentcmdError):
    """The run cannot be resumed now: it has not failed or been cancelled, or it was resumed already."""

    code = "not_resumable"
    exit_code = 1
    http_status = 409
    fix_hint = "only a Failed or Cancelled run can be resumed, once; resume its newest resumed run instead"


@dataclasses.dataclass(frozen=True)
class Resumed:
    """A started resume: the new run, the run it resumes, how many completed steps it keeps."""

    run_id: str
    resumed_from: str
    kept_steps: int

    def api(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "resumed_from": self.resumed_from, "kept_steps": self.kept_steps}


def parse_body(body: Any) -> dict[str, Any] | None:
    """The replacement event data of a resume request, or None to keep the event as it was."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise ResumeInputError("a resume request body must be a JSON object",
                               'send {} to resume with the same event, or {"data": {...}} to replace its data')
    unknown = sorted(set(body) - {"data"})
    if unknown:
        raise ResumeInputError(f"unknown field(s) in the resume request: {', '.join(unknown)}",
                               'the only field is "data", the replacement event data')
    data = body.get("data")
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ResumeInputError(f"'data' must be a JSON object, got {type(data).__name__}",
                               'send e.g. {"data": {"issue": 42}}')
    return {k: v for k, v in data.items() if k != "_inngest"}


def not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f"no run with id {run_id!r}", "list runs with GET /v1/runs or 'agentcmd runs list'")


def _edited_event(original: dict[str, Any], data: dict[str, Any], now: int) -> NewEvent:
    """The new event of a resume with edited data: same name and user, the new data, a new id."""
    internal_id = str(ULID())
    name = str(original.get("name") or "")
    body: dict[str, Any] = {"name": name, "data": data, "id": internal_id, "ts": now}
    if isinstance(original.get("user"), dict) and original["user"]:
        body["user"] = original["user"]
    return NewEvent(internal_id, name, body, None, now)


async def resume_run(store: Store, dispatcher: RunSpecs, functions: dict[str, Function], run_id: str,
                     data: dict[str, Any] | None, now: int) -> Resumed:
    """Start the resume of ``run_id`` (see the module docstring); raises NotFound / NotResumable.

    ``functions`` are the active functions by slug (the registry's).
    """

    def txn(conn: sqlite3.Connection) -> Resumed:
        old = resume_store.source_txn(conn, run_id)
        if old is None:
            raise not_found(run_id)
        if old.status not in RESUMABLE:
            raise NotResumableError(f"run {run_id} is {old.status}: only a Failed or Cancelled run can be resumed",
                                    "wait for it to end (or cancel it), then resume it")
        already = resume_store.resumed_as_txn(conn, run_id)
        if already is not None:
            raise NotResumableError(f"run {run_id} was already resumed as run {already}",
                                    f"follow run {already}; if it failed too, resume that one")
        fn = functions.get(old.function_slug)
        if fn is None:
            raise NotResumableError(f"the function of run {run_id} ({old.function_slug}) is no longer served",
                                    "sync the app that serves it, then resume the run")
        events = json.loads(old.events_json)
        if not isinstance(events, list) or not events or not isinstance(events[0], dict):
            raise NotResumableError(f"run {run_id} has no triggering event to run again",
                                    "start a new run instead")
        event_id = old.event_id
        if data is not None:
            edited = _edited_event(events[0], data, now)
            insert_events_txn(conn, [edited], now, dispatch=False)
            events, event_id = [edited.body], edited.internal_id
        # A resume is a new top-level run: no invoke parent to report back to.
        spec = dataclasses.replace(dispatcher.run_spec(fn, events, event_id), parent=None, idem_key=None)
        runs.create_runs_txn(conn, [spec], now, None)
        kept = resume_store.copy_completed_steps_txn(conn, run_id, spec.run_id)
        resume_store.set_resume_of_txn(conn, spec.run_id, run_id)
        runs.history_txn(conn, spec.run_id, now, "run_resumed_from", None, None,
                         f"resumes run {run_id}, keeping {kept} completed step{'s' if kept != 1 else ''}"
                         + (" (input edited)" if data is not None else ""))
        runs.history_txn(conn, run_id, now, "run_resumed_as", None, None, f"resumed as run {spec.run_id}")
        return Resumed(spec.run_id, run_id, kept)

    return await store.write(txn)
