"""The app API: list workflows, start runs, read and cancel runs, send events.

    GET  /api/workflows                 {"data": [workflow], "errors": [load error]}
    GET  /api/workflows/{id}            {"data": workflow}
    POST /api/workflows/{id}/runs       {"input": {...}} -> 202 {"data": {"event_id", "run_id", ...}}
                                        (always with the run; else an error: startrun.py)
    GET  /api/runs?workflow=&status=&limit=   {"data": [run], "metadata": {"next_cursor"}}
    GET  /api/runs/{id}                 {"data": run}  (run["steps"]: engine history + step records)
    POST /api/runs/{id}/cancel          {"data": run}
    POST /api/events                    {"name", "data"} -> {"data": {"ids": [...]}}

Runs are read from the engine's REST API. Input is validated against the
workflow's ``args_schema`` before any event is sent (422 with every
problem). Errors are ``{"error", "code", "hint"}`` (``AgentcmdError.to_json``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import inngest
from fastapi import APIRouter, Body, Request

from agentcmd.errors import InputError, NotFoundError, UnavailableError
from agentcmd.server import notify, startrun, usage
from agentcmd.server.engine import EngineRestClient
from agentcmd.server.runs import TERMINAL, run_view
from agentcmd.workflows import steprecords
from agentcmd.workflows.define import APP_ID, Workflow
from agentcmd.workflows.loading import Discovered
from agentcmd.workflows.process import terminate_run

router = APIRouter(prefix="/api")


def _state(request: Request) -> tuple[Discovered, EngineRestClient, inngest.Inngest]:
    s = request.app.state
    return s.discovered, s.engine, s.client


def _workflow(request: Request, workflow_id: str) -> Workflow:
    discovered = request.app.state.discovered
    wf: Workflow | None = discovered.workflows.get(workflow_id)
    if wf is None:
        if workflow_id in discovered.reserved:  # its file is broken: say so, not "unknown"
            raise NotFoundError(f"workflow {workflow_id!r} is not served: {discovered.reserved[workflow_id]} "
                                "failed to load", "see the load errors on the workflow index page or in "
                                "'agentcmd workflows list'")
        known = ", ".join(sorted(discovered.workflows)) or "none"
        raise NotFoundError(f"unknown workflow {workflow_id!r} (known: {known})",
                            "check 'agentcmd workflows list' and the files in .agentcmd/workflows/")
    return wf


@router.get("/workflows")
async def list_workflows(request: Request) -> dict[str, Any]:
    discovered, _, _ = _state(request)
    return {"data": [wf.describe() for wf in discovered.workflows.values()],
            "errors": [e.to_json() for e in discovered.errors]}


@router.get("/workflows/{workflow_id}")
async def get_workflow(request: Request, workflow_id: str) -> dict[str, Any]:
    wf = _workflow(request, workflow_id)
    return {"data": {**wf.describe(), "usage": await usage.workflow_usage(request.app.state.runtime.data_dir,
                                                                          wf.spec.id)}}


async def _send(client: inngest.Inngest, name: str, data: dict[str, Any]) -> list[str]:
    hint = "check that the engine is running ('agentcmd dev' / 'agentcmd start') and, in production, the event key"
    try:
        ids = await client.send(inngest.Event(name=name, data=data))
    except Exception as exc:  # the SDK raises its own error types for network and auth problems
        raise UnavailableError(f"could not send event {name!r} to the engine: {exc}", hint) from None
    if not ids:
        # The SDK returns no ids (and no error) when the engine answers 4xx without a JSON error.
        raise UnavailableError(f"the engine did not accept event {name!r} (no event id returned)", hint)
    return ids


@router.post("/workflows/{workflow_id}/runs", status_code=202)
async def start_run(request: Request, workflow_id: str,
                    body: dict[str, Any] | None = Body(default=None)) -> dict[str, Any]:
    wf = _workflow(request, workflow_id)
    _, _, client = _state(request)
    raw = (body or {}).get("input", {}) if body is None or "input" in body else body
    data = wf.validate_input(raw)
    started = await startrun.start_run(request, wf, data, lambda name, d: _send(client, name, d))
    return {"data": {"workflow": wf.spec.id, "event_id": started["event_id"], "run_id": started["run_id"],
                     "trigger": wf.spec.trigger, "input": data, "resynced": started["resynced"]}}


async def _view(request: Request, run: dict[str, Any]) -> dict[str, Any]:
    discovered, engine, _ = _state(request)
    run_id = str(run.get("run_id") or "")
    try:
        steps = await engine.run_steps(run_id) if run_id else []
    except NotFoundError:
        steps = []
    runtime = request.app.state.runtime
    data_dir = runtime.data_dir
    records = [steprecords.effective(r, runtime.boot_id)
               for r in (await steprecords.read(data_dir, run_id) if run_id else [])]
    return await usage.add_run_usage(run_view(run, steps, discovered.workflows, data_dir, records), data_dir)


@router.get("/runs")
async def list_runs(request: Request, workflow: str | None = None, status: str | None = None,
                    limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
    _, engine, _ = _state(request)
    if not 1 <= limit <= 200:
        raise InputError(f"limit must be from 1 to 200, got {limit}", "e.g. ?limit=20")
    function_id = f"{APP_ID}-{_workflow(request, workflow).spec.id}" if workflow else None
    runs, next_cursor = await engine.list_runs(function_id=function_id, status=status, limit=limit,
                                               cursor=cursor)
    if function_id:
        runs = [r for r in runs if function_id in (r.get("function_slug"), r.get("function_id"))
                or not r.get("function_slug")]
    views = await asyncio.gather(*(_view(request, r) for r in runs))
    return {"data": list(views), "metadata": {"next_cursor": next_cursor}}


@router.get("/runs/{run_id}")
async def get_run(request: Request, run_id: str) -> dict[str, Any]:
    _, engine, _ = _state(request)
    view = await _view(request, await engine.get_run(run_id))
    view["notifications"] = await notify.run_notifications(request.app.state.runtime.data_dir, run_id)
    return {"data": view}


@router.post("/runs/{run_id}/cancel")
async def cancel_run(request: Request, run_id: str) -> dict[str, Any]:
    _, engine, _ = _state(request)
    run = await engine.get_run(run_id)
    if run.get("status") not in TERMINAL:
        run = await engine.cancel_run(run_id) or await engine.get_run(run_id)
    # Stop what this app is running for the run now; the cancel watcher would in a second.
    stopped = terminate_run(run_id)
    view = await _view(request, run)
    view["stopped_processes"] = stopped
    return {"data": view}


@router.post("/events")
async def send_event(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    _, _, client = _state(request)
    name = body.get("name")
    data = body.get("data", {})
    if not isinstance(name, str) or not name.strip():
        raise InputError("an event needs a non-empty 'name'", 'send {"name": "app/thing.happened", "data": {}}',
                         details=[{"path": "name", "message": "is required"}])
    if not isinstance(data, dict):
        raise InputError("event 'data' must be a JSON object", 'send {"name": ..., "data": {...}}',
                         details=[{"path": "data", "message": "expected object"}])
    return {"data": {"ids": await _send(client, name, data)}}
