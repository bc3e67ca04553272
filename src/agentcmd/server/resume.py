"""``POST /api/runs/{id}/resume``: resume a failed or cancelled run from its first step that did not complete.

    POST /api/runs/{id}/resume   {"input"?: {...}} -> 201 {"data": {"run_id", "resumed_from", "kept_steps"}}

The engine does the resume (``POST /v1/runs/{id}/resume``: a new run, the
same event, the old run's completed steps kept, both runs linked). This
module adds what the app knows:

* an edited ``input`` is validated against the workflow's ``args_schema``
  first (422 with every problem; the engine sees nothing), then becomes the
  new event's data, as a start's input does;
* a run that is not Failed or Cancelled is refused here (409
  ``run_not_resumable``) and so is a run the engine refuses (409
  ``engine_conflict`` with its words: resumed already, function gone);
* the old run's artifacts are copied to the new run (files the new run
  already wrote win), so the new run's page lists the artifacts of the
  steps it kept. Step records, agent transcripts and costs of kept steps
  stay with the old run (they happened there, and are counted once); the
  new run's page links to it ("resumed from").

The workspace of a ``worktree``/``branch`` workflow is the old run's: its
``workspace`` step is kept with the rest, and its memo names the worktree
and branch (``workflows/workspace.py``), so the resumed run works in the
worktree the failed run kept.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Request

from agentcmd.errors import AgentcmdError, InputError, NotFoundError
from agentcmd.privatefs import write_private_file
from agentcmd.safenames import path_under
from agentcmd.server.engine import EngineRestClient
from agentcmd.server.runs import workflow_id_of
from agentcmd.workflows import schedules
from agentcmd.workflows.define import Workflow

router = APIRouter(prefix="/api")

RESUMABLE = ("Failed", "Cancelled")


class RunNotResumableError(AgentcmdError):
    """Only a Failed or Cancelled run can be resumed; this one is running, queued or completed."""

    code = "run_not_resumable"
    exit_code = 1
    http_status = 409
    fix_hint = "wait until the run fails or cancel it first; a completed run has nothing to resume"


def _input_of(body: dict[str, Any] | None) -> tuple[bool, Any]:
    """(whether an input was given, the input) of a resume request body."""
    if body is None:
        return False, None
    if not isinstance(body, dict):
        raise InputError("the resume request body must be a JSON object",
                         'send {} or {"input": {...}}', details=[{"path": "$", "message": "expected object"}])
    unknown = sorted(set(body) - {"input"})
    if unknown:
        raise InputError(f"unknown field(s) in the resume request: {', '.join(unknown)}",
                         'the only field is "input", the edited input (omit it to keep the run\'s input)',
                         details=[{"path": k, "message": "unknown field"} for k in unknown])
    if "input" not in body or body["input"] is None:
        return False, None
    return True, body["input"]


def workflow_of(request: Request, run: dict[str, Any]) -> Workflow | None:
    """The served workflow a run belongs to, or None (another app's function, or a workflow gone since)."""
    wf_id = workflow_id_of(run)
    found: Workflow | None = request.app.state.discovered.workflows.get(wf_id or "")
    return found


def _copy_artifacts(data_dir: Path, old: str, new: str) -> int:
    """Copy the old run's artifact files into the new run's folder, keeping files already there; how many."""
    src = path_under(data_dir / "artifacts", old)
    dst = path_under(data_dir / "artifacts", new)
    if src is None or dst is None or not src.is_dir():
        return 0
    copied = 0
    for item in sorted(src.iterdir()):
        target = dst / item.name
        if not item.is_file() or target.exists():
            continue
        write_private_file(target, item.read_bytes())   # 0600 in 0700 directories, like all run data
        copied += 1
    return copied


async def resume(request: Request, run_id: str, body: dict[str, Any] | None) -> dict[str, Any]:
    """Resume ``run_id`` (see the module docstring) -> ``{"run_id", "resumed_from", "kept_steps"}``."""
    engine: EngineRestClient = request.app.state.engine
    given, raw = _input_of(body)
    run = await engine.get_run(run_id)
    status = run.get("status")
    if status not in RESUMABLE:
        raise RunNotResumableError(f"run {run_id} is {status}: only a Failed or Cancelled run can be resumed",
                                   "wait for it to end or cancel it ('agentcmd runs cancel'), then resume it"
                                   if status != "Completed" else "a completed run has nothing left to run; "
                                   "start a new run instead")
    data: dict[str, Any] | None = None
    if given:
        wf = workflow_of(request, run)
        if wf is None:
            raise NotFoundError(f"run {run_id} is not a run of a workflow this app serves, so its input "
                                "cannot be checked", "resume it without an edited input")
        event = await engine.get_event(str(run.get("event_id") or ""))
        if event.get("name") == schedules.TIMER_EVENT:
            raise InputError(f"run {run_id} was started by a cron schedule: it has no input to edit",
                             "resume it without an input, or start a new run with that input")
        data = wf.validate_input(raw)
    resumed = await engine.resume_run(run_id, data)
    new = str(resumed.get("run_id") or "")
    if new:
        await asyncio.to_thread(_copy_artifacts, request.app.state.runtime.data_dir, run_id, new)
    return {"run_id": new, "resumed_from": str(resumed.get("resumed_from") or run_id),
            "kept_steps": int(resumed.get("kept_steps") or 0)}


async def run_input(request: Request, run: dict[str, Any]) -> dict[str, Any] | None:
    """The input (event data) a run started with, for the edit-input form; None when the engine cannot say."""
    engine: EngineRestClient = request.app.state.engine
    event_id = run.get("event_id")
    if not event_id:
        return None
    try:
        event = await engine.get_event(str(event_id))
    except AgentcmdError:
        return None
    data = event.get("data")
    return {k: v for k, v in data.items() if k != "_inngest"} if isinstance(data, dict) else None


@router.post("/runs/{run_id}/resume", status_code=201)
async def resume_run(request: Request, run_id: str, body: Any = Body(default=None)) -> dict[str, Any]:
    return {"data": await resume(request, run_id, body)}
