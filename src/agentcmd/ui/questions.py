"""The workflow views' questions: Approve / Reject forms and forms generated from a ``step.ask`` schema.

The run page shows its run's waiting questions; the workflow page those of
its recent running runs. Each is a plain HTML form (no JavaScript) posting
with the views' CSRF token to

    POST /runs/{id}/questions/{question}/approve   decision=approve|reject, comment
    POST /runs/{id}/questions/{question}/answer    the schema's fields, comment

An ``ask`` form has one input per property of an object schema (text,
number, integer, a checkbox for booleans, a select for enums), one input
for a scalar schema, and a JSON textarea for anything else (and for
properties that are objects or arrays). The posted fields become the JSON
answer, checked by the same code as the API's (``server/questions.py``):
a bad answer gets the error page (422) listing every problem.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agentcmd.errors import AgentcmdError, AuthError, InputError
from agentcmd.server import questions as answering
from agentcmd.web.forms import read_form, safe_next
from agentcmd.web.site import site_of
from agentcmd.webauth.session import CSRF_FIELD

SCALARS = ("string", "number", "integer", "boolean")
JSON_FIELD = "answer_json"


@dataclass
class Field:
    """One input of a generated form."""

    name: str
    label: str
    kind: str                       # text | number | integer | checkbox | select | json
    required: bool = False
    description: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)   # (posted value: JSON, shown label)
    value: str = ""


def _kind(schema: dict[str, Any]) -> str:
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return "select"
    t = schema.get("type")
    if t == "string":
        return "text"
    if t in ("number", "integer"):
        return str(t)
    if t == "boolean":
        return "checkbox"
    return "json"


def _field(name: str, label: str, schema: dict[str, Any], required: bool) -> Field:
    kind = _kind(schema)
    options = [(json.dumps(v), str(v)) for v in schema.get("enum", [])] if kind == "select" else []
    default = schema.get("default")
    value = "" if default is None else (json.dumps(default) if kind in ("select", "json") else str(default))
    if kind == "json" and not value:
        value = "{}" if schema.get("type") == "object" else ""
    return Field(name, label, kind, required, str(schema.get("description") or ""), options, value)


def form_of(schema: dict[str, Any]) -> tuple[str, list[Field]]:
    """("object" | "single" | "json", the inputs) for a question's JSON Schema."""
    props = schema.get("properties")
    if schema.get("type") == "object" and isinstance(props, dict) and props:
        required = set(schema.get("required") or [])
        return "object", [_field(f"field.{name}", str(sub.get("title") or name), sub if isinstance(sub, dict) else {},
                                 name in required) for name, sub in props.items()]
    if _kind(schema) != "json":
        return "single", [_field("answer", str(schema.get("title") or "Answer"), schema, True)]
    return "json", [Field(JSON_FIELD, "Answer (JSON)", "json", True, str(schema.get("description") or ""))]


def _parse(f: Field, posted: dict[str, str], problems: list[dict[str, str]]) -> tuple[bool, Any]:
    """(present, value) of one input; what cannot be read is added to ``problems``."""
    raw = posted.get(f.name)
    path = f.name.removeprefix("field.") if f.name.startswith("field.") else "$"
    if f.kind == "checkbox":
        return True, raw is not None and raw not in ("", "off", "false")
    if raw is None or (raw.strip() == "" and f.kind != "text"):
        return False, None
    if f.kind == "text":
        return (raw != "" or f.required), raw
    try:
        if f.kind == "integer":
            return True, int(raw.strip())
        if f.kind == "number":
            number = float(raw.strip())
            return True, int(number) if number.is_integer() and "." not in raw else number
        return True, json.loads(raw)
    except ValueError:
        what = {"integer": "a whole number", "number": "a number"}.get(f.kind, "valid JSON")
        problems.append({"path": path, "message": f"must be {what}, got {raw!r}"})
        return False, None


def answer_from_form(schema: dict[str, Any], posted: dict[str, str]) -> Any:
    """The JSON answer a generated form posted; an ``InputError`` for what cannot be read."""
    mode, fields = form_of(schema)
    problems: list[dict[str, str]] = []
    if mode == "object":
        value: Any = {}
        for f in fields:
            present, item = _parse(f, posted, problems)
            if present:
                value[f.name.removeprefix("field.")] = item
    else:
        present, value = _parse(fields[0], posted, problems)
        if not present and not problems:
            problems.append({"path": "$", "message": "is required"})
    if problems:
        listed = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
        raise InputError(f"invalid answer: {listed}", "fix the form's fields and send it again", details=problems)
    return value


def _view(q: dict[str, Any], next_url: str = "") -> dict[str, Any]:
    """A question as the template (and the page's JSON twin) sees it: its form, where to go after answering."""
    mode, fields = form_of(q.get("schema") or {}) if q.get("kind") == "ask" else ("approval", [])
    return {**q, "form": mode, "fields": [dataclasses.asdict(f) for f in fields], "next": next_url,
            "show_run": bool(next_url)}


async def for_run(request: Request, run: dict[str, Any]) -> list[dict[str, Any]]:
    """The run page's questions (each with its generated form), the waiting ones first."""
    found = await answering.run_questions(request, str(run.get("run_id") or ""), str(run.get("status")))
    return [_view(q) for q in sorted(found, key=lambda q: not q["waiting"])]


async def for_runs(request: Request, runs: list[dict[str, Any]], workflow_id: str) -> list[dict[str, Any]]:
    """The waiting questions of the listed runs that still run (the workflow page)."""
    live = [r for r in runs if r.get("status") not in ("Completed", "Failed", "Cancelled") and r.get("run_id")]
    found = await asyncio.gather(*(answering.run_questions(request, str(r["run_id"]), str(r.get("status")))
                                   for r in live[:50]))
    back = f"/workflows/{quote(workflow_id)}"
    return [_view(q, back) for qs in found for q in qs if q["waiting"]]


async def _posted(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token checks out (403 if not), as the views' other forms."""
    fields = await read_form(request)
    if not site_of(request).auth.csrf_ok(request, fields.get(CSRF_FIELD)):
        err = AuthError("the form's CSRF token is missing or stale", "reload the page and try again")
        err.http_status = 403
        raise err
    return fields


def _back(fields: dict[str, str], run_id: str, notice: str) -> Response:
    target = safe_next(fields.get("next")) if fields.get("next") else f"/runs/{quote(run_id)}"
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}notice={notice}", status_code=303)


async def approve_form(request: Request, run_id: str, question: str) -> Response:
    try:
        fields = await _posted(request)
        decision = fields.get("decision", "approve")
        if decision not in ("approve", "reject"):
            raise InputError(f"decision must be approve or reject, got {decision!r}", "use the form's buttons")
        await answering.answer_question(request, run_id, question,
                                        decision="approved" if decision == "approve" else "rejected",
                                        answer=None, comment=fields.get("comment") or None,
                                        by=answering.who(request))
    except AgentcmdError as exc:
        return site_of(request).error(request, exc, False)
    return _back(fields, run_id, "approved" if decision == "approve" else "rejected")


async def answer_form(request: Request, run_id: str, question: str) -> Response:
    try:
        fields = await _posted(request)
        record = await answering._pick(request, run_id, question)
        value = answer_from_form(record.get("schema") or {}, fields)
        await answering.answer_question(request, run_id, question, decision="answered", answer=value,
                                        comment=fields.get("comment") or None, by=answering.who(request))
    except AgentcmdError as exc:
        return site_of(request).error(request, exc, False)
    return _back(fields, run_id, "answered")
