"""Runs as the app API shows them: engine rows plus phases, steps and cancelled steps.

The engine knows runs and steps; the app knows workflows. Step names are
recorded as ``<phase>/<id>`` inside a phase (see workflows/steps.py), so a
step's phase and a run's current phase are read back from the history.

The app's own step records (``workflows/steprecords.py``) fill in what the
engine cannot know yet: the step running now (status ``Running``, its
``elapsed_ms`` and ``pid``), a step cut short by an app restart
(``Interrupted``), and when each step started and ended. While a step runs,
the run's phase is that step's phase.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentcmd.workflows import steprecords
from agentcmd.workflows.define import APP_ID, Workflow
from agentcmd.workflows.steps import read_cancelled_steps

TERMINAL = ("Completed", "Failed", "Cancelled")
# Engines differ in case ("completed" vs "Completed"); the API speaks the run status vocabulary.
_STEP_STATUS = {s.lower(): s for s in ("Completed", "Failed", "Cancelled", "Running", "Queued", "Scheduled",
                                       "Sleeping", "Waiting", "Errored")}


def workflow_id_of(run: dict[str, Any]) -> str | None:
    for key in ("function_slug", "function_id"):
        value = run.get(key)
        if isinstance(value, str) and value.startswith(f"{APP_ID}-"):
            return value[len(APP_ID) + 1:]
    return None


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def step_view(step: dict[str, Any], phases: tuple[str, ...]) -> dict[str, Any]:
    name = str(step.get("name") or step.get("step_id") or "")
    phase, short = None, name
    head, sep, tail = name.partition("/")
    if sep and head in phases:
        phase, short = head, tail
    output = _maybe_json(step.get("output"))
    if phase is None and isinstance(output, dict) and isinstance(output.get("data"), dict):
        phase = output["data"].get("phase") if output["data"].get("phase") in phases else None
    status = step.get("status")
    if isinstance(status, str):
        status = _STEP_STATUS.get(status.lower(), status)
    return {"id": short, "name": name, "phase": phase, "op": step.get("op"), "status": status,
            "attempt": step.get("attempt"), "output": output, "error": _maybe_json(step.get("error")),
            "started_at": step.get("started_at"), "ended_at": step.get("ended_at")}


def _elapsed(view: dict[str, Any]) -> int | None:
    start, end = steprecords.iso_ms(view.get("started_at")), steprecords.iso_ms(view.get("ended_at"))
    return None if start is None or end is None else max(0, end - start)


def merge_records(views: list[dict[str, Any]], records: list[dict[str, Any]],
                  phases: tuple[str, ...]) -> list[dict[str, Any]]:
    """Engine steps enriched with the app's records, then the steps only the app knows of yet.

    ``records`` are ``steprecords.effective`` records. For a step the engine
    has, the engine's status wins (it is what the run will replay); the
    record adds start and end times the engine lacks.
    """
    by_id = {str(r.get("step_id")): r for r in records}
    merged: list[dict[str, Any]] = []
    for view in views:
        rec = by_id.pop(view["name"], None)
        out = {**view, "step_id": view["name"], "pid": None}
        if rec is not None:
            out["started_at"] = out.get("started_at") or rec.get("started_at")
            out["ended_at"] = out.get("ended_at") or rec.get("ended_at")
        out["elapsed_ms"] = _elapsed(out)
        merged.append(out)
    for rec in records:
        if str(rec.get("step_id")) not in by_id:
            continue
        status = str(rec.get("status") or "")
        phase = rec.get("phase") if rec.get("phase") in phases else None
        merged.append({"id": rec.get("name"), "name": rec.get("step_id"), "step_id": rec.get("step_id"),
                       "phase": phase, "op": "StepRun", "status": status.capitalize() or None,
                       "attempt": rec.get("attempt"), "output": None, "error": rec.get("error"),
                       "started_at": rec.get("started_at"), "ended_at": rec.get("ended_at"),
                       "pid": rec.get("pid"), "elapsed_ms": rec.get("elapsed_ms")})
    return merged


def run_view(run: dict[str, Any], steps: list[dict[str, Any]], workflows: dict[str, Workflow],
             data_dir: Path | None, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``records``: the run's step records as ``steprecords.effective`` made them."""
    wf_id = workflow_id_of(run)
    wf = workflows.get(wf_id or "")
    phases = wf.spec.phases if wf else ()
    views = [step_view(s, phases) for s in steps]
    run_id = str(run.get("run_id") or "")
    if data_dir is not None and run_id:
        known = {v["name"] for v in views}
        for entry in read_cancelled_steps(data_dir, run_id):
            if entry.get("name") not in known:
                views.append(step_view({**entry, "op": "StepRun"}, phases))
    views = merge_records(views, records or [], phases)
    running = [v for v in views if v["status"] == "Running"]
    current = running[-1]["phase"] if running and running[-1]["phase"] else \
        next((v["phase"] for v in reversed(views) if v["phase"]), None)
    return {
        "run_id": run_id, "workflow": wf_id, "function_id": run.get("function_id"),
        "status": run.get("status"), "phase": current, "phases": list(phases),
        "event_id": run.get("event_id"), "started_at": run.get("run_started_at"),
        "ended_at": run.get("ended_at"), "output": _maybe_json(run.get("output")),
        "error": _maybe_json(run.get("error")), "attempt": run.get("attempt"), "steps": views,
        "resume_of": run.get("resume_of"), "resumed_as": list(run.get("resumed_as") or []),
    }


def run_version(view: dict[str, Any]) -> str:
    """A run view's fingerprint (the run page's ``data-version``, its JSON twin's and its stream's).

    The run's status, its steps' statuses, and whether each step's result is known: a step the
    app recorded as completed shows its command and output once the engine has stored its
    result, with no status change in between.
    """
    from agentcmd.web.render import version_of

    return version_of(view["status"], [(s["name"], s["status"], s.get("output") is not None)
                                       for s in view["steps"]])
