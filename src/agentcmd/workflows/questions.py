"""Humans in the loop: ``step.approval`` and ``step.ask``, and the question records the app reads.

A question is two SDK steps, so nothing in the app waits while a human
thinks:

1. ``<id>`` prefixed ``question:`` -- a memoised ``step.run`` that writes
   the question record ``<data dir>/runs/<run id>/questions/<id>.json``
   (0600 in 0700 directories) and publishes the ``waiting`` run event
   (``runevents.py``) the first time the record is written; a replay of
   the body reads the memo and publishes nothing.
2. ``<id>`` -- the SDK's ``wait_for_event`` on the engine for
   ``agentcmd/question.answered`` whose ``data.run_id`` and
   ``data.question`` are this run and this question. The engine keeps the
   wait across restarts of the app (and, with its SQLite store, of itself).

Answers come through the app server (``server/questions.py``: API, UI and
CLI). A second answer is refused: the first one creates
``<id>.answered`` next to the record with ``O_EXCL`` before it sends the
event, so of two concurrent answers exactly one wins (the marker is removed
again if the event could not be sent). A wait that times out leaves a
``timed_out`` marker, so a late answer is told the run no longer waits.

Timeouts: ``step.approval`` returns an ``Approval`` with
``decision="timed_out"`` (``approved=False``): the run goes on and the body
decides. ``step.ask`` returns ``default=`` when given, else raises
``QuestionTimedOut`` (non-retriable: the run fails saying which question
nobody answered).

Question ids are the step ids as the engine records them (``phase/id``
inside a phase); file names quote them, so any id is one plain file name.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol
from urllib.parse import quote

import inngest
from pydantic import BaseModel, ValidationError

from agentcmd.errors import AgentcmdError, InputError, Variant
from agentcmd.privatefs import FILE_MODE, ensure_private_dir
from agentcmd.safenames import is_plain_name
from agentcmd.workflows import runevents
from agentcmd.workflows.durations import parse_duration

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from agentcmd.workflows.context import Runtime, WorkflowContext
    from agentcmd.workflows.spec import WorkflowSpec


class WorkflowSteps(Protocol):
    """What the questions need of ``steps.WorkflowSteps`` (a Protocol: steps.py imports this module)."""

    sdk: inngest.Step
    _ctx: WorkflowContext
    _runtime: Runtime
    _spec: WorkflowSpec

    @property
    def current_phase(self) -> str | None: ...

    def _sid(self, step_id: str) -> str: ...

    def _recorded(self, sid: str, fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]: ...

ANSWER_EVENT = "agentcmd/question.answered"
"""The event an answer is sent as; its data: run_id, question, decision, answer, comment, by, answered_at."""

DEFAULT_TIMEOUT = "24h"
Decision = Literal["approved", "rejected", "timed_out"]
_MISSING: Any = object()


class QuestionTimedOut(inngest.NonRetriableError):
    """Nobody answered a ``step.ask`` within its timeout and it has no ``default=``.

    Outside the ``AgentcmdError`` tree on purpose, like ``StepCancelledError``:
    the SDK reads ``code``, ``name`` and ``message`` of its own error classes.
    """


class QuestionConflictError(AgentcmdError):
    """The question was already answered: the first answer stands."""

    code = "already_answered"
    exit_code = 1
    http_status = 409
    fix_hint = "nothing to do: see the answer on the run page or with 'agentcmd runs show RUN_ID'"
    variants: ClassVar[Mapping[str, Variant]] = {
        "not_waiting": ("the run no longer waits for this question: it ended, was cancelled, or the question "
                        "timed out", "start a new run if the decision still matters"),
    }


@dataclasses.dataclass(frozen=True)
class Approval:
    """What ``step.approval`` returns: the decision, who made it, when (ISO 8601 UTC) and their comment.

    ``decision`` is ``"timed_out"`` (and ``approved`` False) when nobody
    answered within the timeout; ``by``/``at``/``comment`` are then None.
    """

    approved: bool
    decision: Decision
    by: str | None = None
    at: str | None = None
    comment: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Records ----------------------------------------------------------------------------------------------------
def _data_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir
    from agentcmd.workflows.context import get_runtime

    return get_runtime().data_dir


def questions_dir(data_dir: Path | None, run_id: str) -> Path | None:
    """Where a run's question records live; None for a run id that is not one plain name (it came from a URL)."""
    if not isinstance(run_id, str) or not is_plain_name(run_id):
        return None
    return _data_dir(data_dir) / "runs" / run_id / "questions"


def _file_stem(question: str) -> str:
    return quote(question, safe="")


def _paths(data_dir: Path | None, run_id: str, question: str) -> tuple[Path, Path] | None:
    where = questions_dir(data_dir, run_id)
    if where is None or not isinstance(question, str) or not question:
        return None
    stem = _file_stem(question)
    return where / f"{stem}.json", where / f"{stem}.answered"


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Readers see the old record or the new one, never half of one."""
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), FILE_MODE)
        json.dump(data, fh)
    os.replace(tmp, path)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def create_record(data_dir: Path | None, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Write a question record unless one exists; (the record on disk, whether this call wrote it)."""
    paths = _paths(data_dir, str(record["run_id"]), str(record["question"]))
    if paths is None:
        raise inngest.NonRetriableError(f"run id {record['run_id']!r} cannot name a question record")
    existing = _load(paths[0])
    if existing is not None:
        return existing, False
    _write_atomic(paths[0], record)
    return record, True


def read(run_id: str, question: str, data_dir: Path | None = None) -> dict[str, Any] | None:
    """One question with its answer (or None if there is no such question)."""
    paths = _paths(data_dir, run_id, question)
    if paths is None:
        return None
    record = _load(paths[0])
    if record is None:
        return None
    if record.get("answer") is None:   # answered (or timed out) but the record not rewritten yet
        marker = _load(paths[1])
        if marker is not None:
            record = {**record, "answer": marker}
    return record


def list_for(run_id: str, data_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every question of a run, oldest first, each with its answer (None while unanswered)."""
    where = questions_dir(data_dir, run_id)
    if where is None or not where.is_dir():
        return []
    found = []
    for path in where.glob("*.json"):
        record = _load(path)
        if record is not None and isinstance(record.get("question"), str):
            found.append(read(run_id, record["question"], data_dir) or record)
    return sorted(found, key=lambda r: str(r.get("asked_at") or ""))


def is_open(record: dict[str, Any], now: datetime.datetime | None = None) -> bool:
    """Unanswered and not past its timeout (the run's own status is the caller's to check)."""
    if record.get("answer") is not None:
        return False
    expires = record.get("expires_at")
    if isinstance(expires, str):
        with contextlib.suppress(ValueError):
            return datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) > (now or utc_now())
    return True


def pending(run_id: str, data_dir: Path | None = None) -> list[dict[str, Any]]:
    """The questions of a run still waiting for an answer."""
    now = utc_now()
    return [r for r in list_for(run_id, data_dir) if is_open(r, now)]


def claim(run_id: str, question: str, answer: dict[str, Any], data_dir: Path | None = None) -> bool:
    """Take the one right to answer: True for the first caller, False if an answer (or a timeout) came first."""
    paths = _paths(data_dir, run_id, question)
    if paths is None:
        return False
    ensure_private_dir(paths[1].parent)
    try:
        fd = os.open(paths[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(answer, fh)
    return True


def release(run_id: str, question: str, data_dir: Path | None = None) -> None:
    """Give the right to answer back (the answer could not be sent)."""
    paths = _paths(data_dir, run_id, question)
    if paths is not None:
        with contextlib.suppress(FileNotFoundError):
            paths[1].unlink()


def settle(run_id: str, question: str, answer: dict[str, Any], data_dir: Path | None = None) -> None:
    """Write the answer into the record (the marker already holds it)."""
    paths = _paths(data_dir, run_id, question)
    record = _load(paths[0]) if paths else None
    if paths is not None and record is not None and record.get("answer") is None:
        _write_atomic(paths[0], {**record, "answer": answer})


def mark_timed_out(run_id: str, question: str, data_dir: Path | None = None) -> None:
    """The wait ended without an answer: later answers are told the run no longer waits."""
    marker = {"decision": "timed_out", "answer": None, "comment": None, "by": None,
              "answered_at": iso(utc_now())}
    if claim(run_id, question, marker, data_dir):
        settle(run_id, question, marker, data_dir)


# Schemas ----------------------------------------------------------------------------------------------------
def inline_refs(schema: Any, defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A pydantic model's JSON Schema with its local ``$ref``s (``#/$defs/X``) written out in place."""
    if depth > 20:       # a recursive model: stop expanding, accept anything below
        return {}
    if isinstance(schema, list):
        return [inline_refs(s, defs, depth) for s in schema]
    if not isinstance(schema, dict):
        return schema
    defs = {**(defs or {}), **(schema.get("$defs") or {})}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return inline_refs({**defs[ref[8:]], **rest}, defs, depth + 1)
    return {k: inline_refs(v, defs, depth + 1) for k, v in schema.items() if k != "$defs"}


def schema_of(schema: dict[str, Any] | type[BaseModel] | None,
              question: str) -> tuple[dict[str, Any], type[BaseModel] | None]:
    """(the JSON Schema kept in the record, the pydantic model if one was given)."""
    from agentcmd.workflows.schema import SchemaDefinitionError, _check_schema

    if schema is None:
        return {}, None
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return inline_refs(schema.model_json_schema()), schema
    if isinstance(schema, dict):
        try:
            _check_schema(schema)
        except SchemaDefinitionError as err:
            raise inngest.NonRetriableError(f"step.ask {question!r}: unusable schema: "
                                            f"{str(err).replace('args_schema', 'schema')}") from None
        return schema, None
    raise inngest.NonRetriableError(f"step.ask {question!r}: schema= must be a JSON Schema dict or a pydantic "
                                    f"model class, got {type(schema).__name__}")


def problems_of(schema: dict[str, Any], value: Any) -> list[dict[str, str]]:
    """Every way ``value`` breaks ``schema``, as ``{"path", "message"}``."""
    from agentcmd.workflows.schema import _validate

    found: list[dict[str, str]] = []
    _validate(value, schema, "", found)
    return found


def check_answer(record: dict[str, Any], value: Any) -> None:
    """Raise ``InputError`` (422) listing every problem of an answer to ``record``'s question."""
    found = problems_of(record.get("schema") or {}, value)
    if found:
        listed = "; ".join(f"{p['path']}: {p['message']}" for p in found)
        raise InputError(f"invalid answer to question {record.get('question')!r}: {listed}",
                         "fix the answer to match the question's schema (shown with the question)",
                         details=found)


# The steps --------------------------------------------------------------------------------------------------
def _cel_string(text: str) -> str:
    return json.dumps(text)   # a JSON string is a valid CEL string literal


async def _ask_and_wait(steps: WorkflowSteps, step_id: str, kind: str, message: str,
                        schema: dict[str, Any], timeout: str | float | datetime.timedelta) -> dict[str, Any] | None:
    if not isinstance(message, str) or not message.strip():
        raise inngest.NonRetriableError(f"step.{kind} {step_id!r}: the message must be a non-empty string")
    question = steps._sid(step_id)
    try:
        wait = parse_duration(timeout, f"step.{kind} timeout")
    except AgentcmdError as err:
        raise inngest.NonRetriableError(str(err)) from None
    ctx, runtime = steps._ctx, steps._runtime
    run_id, workflow_id, data_dir = ctx.run_id, steps._spec.id, runtime.data_dir

    async def ensure_recorded() -> dict[str, Any]:
        asked = utc_now()
        fresh = {"run_id": run_id, "workflow_id": workflow_id, "question": question, "kind": kind,
                 "message": message, "schema": schema, "asked_at": iso(asked),
                 "expires_at": iso(asked + wait), "answer": None}
        kept, created = await asyncio.to_thread(create_record, data_dir, fresh)
        if created:   # once per question and run: a retried body finds the record and stays quiet
            runevents.publish(runevents.RunEvent("waiting", run_id, workflow_id,
                                                 {"question": question, "kind": kind, "message": message}))
        return kept

    async def record() -> dict[str, Any]:
        kept = await ensure_recorded()
        return {"question": question, "kind": kind, "asked_at": kept.get("asked_at"),
                "expires_at": kept.get("expires_at"), "phase": steps.current_phase}

    record_id = steps._sid(f"question:{step_id}")
    await steps.sdk.run(record_id, steps._recorded(record_id, record))
    # A resumed run keeps the old run's "record the question" step, whose record lies under the old run's
    # id; the wait below waits again under this run's id (from now), so the question is asked again here.
    if await asyncio.to_thread(read, run_id, question, data_dir) is None:
        await ensure_recorded()
    got = await steps.sdk.wait_for_event(
        question, event=ANSWER_EVENT, timeout=wait,
        if_exp=f"async.data.run_id == {_cel_string(run_id)} && async.data.question == {_cel_string(question)}")
    if got is None:
        await asyncio.to_thread(mark_timed_out, run_id, question, data_dir)
        return None
    event: dict[str, Any] = got if isinstance(got, dict) else got.model_dump(mode="json")
    data = event.get("data")
    return data if isinstance(data, dict) else {}


async def approval(steps: WorkflowSteps, step_id: str, message: str, *,
                   timeout: str | float | datetime.timedelta = DEFAULT_TIMEOUT) -> Approval:
    """Wait durably for a human to approve or reject; see the module docstring."""
    data = await _ask_and_wait(steps, step_id, "approval", message, {}, timeout)
    if data is None:
        return Approval(approved=False, decision="timed_out")
    decision: Decision = "approved" if data.get("decision") == "approved" else "rejected"
    comment = data.get("comment")
    return Approval(approved=decision == "approved", decision=decision, by=_opt_str(data.get("by")),
                    at=_opt_str(data.get("answered_at")), comment=_opt_str(comment))


async def ask(steps: WorkflowSteps, step_id: str, question: str, *,
              schema: dict[str, Any] | type[BaseModel] | None = None,
              timeout: str | float | datetime.timedelta = DEFAULT_TIMEOUT, default: Any = _MISSING) -> Any:
    """Wait durably for a typed answer; a pydantic instance for a model, else the JSON value."""
    json_schema, model = schema_of(schema, step_id)
    data = await _ask_and_wait(steps, step_id, "ask", question, json_schema, timeout)
    if data is None:
        if default is not _MISSING:
            return default
        raise QuestionTimedOut(f"question {steps._sid(step_id)!r} ({question}) was not answered within "
                               f"{timeout}; give step.ask a default= to go on without an answer")
    answer = data.get("answer")
    if model is None:
        return answer
    try:
        return model.model_validate(answer)
    except ValidationError as err:   # the app checked the JSON Schema; the model may be stricter
        raise inngest.NonRetriableError(f"the answer to {steps._sid(step_id)!r} does not fit "
                                        f"{model.__name__}: {err}") from None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
