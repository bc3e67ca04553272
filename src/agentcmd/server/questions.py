"""Answering a run's questions (``step.approval``/``step.ask``) through the app API.

    GET  /api/runs/{id}/questions   {"data": [question record + "waiting"]}
    POST /api/runs/{id}/approve     {"question"?: id, "approved": bool = true, "comment"?: str}
    POST /api/runs/{id}/answer      {"question"?: id, "answer": <JSON>, "comment"?: str}

``question`` may be left out when exactly one question of the run waits.
An answer is checked in this order: 404 for an unknown run or question;
409 ``already_answered`` when the question has an answer; 409
``not_waiting`` when the run ended, was cancelled, or the question timed
out; 422 ``invalid_input`` with every problem for an answer that does not
fit the question's schema (or the wrong kind: ``approve`` on an ``ask``).
Then the answer claims the question (``questions.claim``, ``O_EXCL``: of
two concurrent answers exactly one wins), the ``agentcmd/question.answered``
event goes to the engine (if that fails the claim is given back and the
answer is 503) and the record keeps the answer.

An event sent before the engine registered the wait would not be seen
(a wait matches only later events), and an answer can come that fast from a
script. So after answering, a background task watches the run until the
engine has stored the wait's result (or the run ended), sending the event
again every second meanwhile; the engine resolves a wait once, so a repeat
changes nothing.

``by`` in the answer: ``cli`` when the CLI sent it (``X-Agentcmd-Client:
cli``, a label, not a credential), ``token`` with the API bearer or a
dashboard login, else ``local`` (an open loopback server).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from typing import Any

import inngest
from fastapi import APIRouter, Body, Request

from agentcmd.errors import InputError, NotFoundError
from agentcmd.server.engine import EngineRestClient
from agentcmd.server.runs import TERMINAL
from agentcmd.workflows import questions
from agentcmd.workflows.questions import QuestionConflictError

router = APIRouter(prefix="/api")
log = logging.getLogger("agentcmd.server.questions")

CLIENT_HEADER = "x-agentcmd-client"
DELIVERY_WATCH_SECONDS = 300.0
RESEND_SECONDS = 1.0


def who(request: Request) -> str:
    """Who answers (see the module docstring)."""
    if request.headers.get(CLIENT_HEADER, "").lower() == "cli":
        return "cli"
    auth = request.app.state.auth
    if auth.bearer_ok(request.headers.get("authorization")) or (auth.locked and auth.web.logged_in(request)):
        return "token"
    return "local"


async def _run_status(engine: EngineRestClient, run_id: str) -> str | None:
    run = await engine.get_run(run_id)   # NotFoundError (404) for an unknown run
    status = run.get("status")
    return str(status) if status is not None else None


async def run_questions(request: Request, run_id: str, status: str | None = None) -> list[dict[str, Any]]:
    """Every question of a run, each with ``waiting``: can it still be answered?"""
    data_dir = request.app.state.runtime.data_dir
    found = await asyncio.to_thread(questions.list_for, run_id, data_dir)
    if found and status is None:
        with contextlib.suppress(Exception):
            status = await _run_status(request.app.state.engine, run_id)
    now = questions.utc_now()
    return [{**q, "waiting": status not in (*TERMINAL, "Unknown") and questions.is_open(q, now)} for q in found]


def _not_waiting(run_id: str, question: str, why: str) -> QuestionConflictError:
    return QuestionConflictError(f"run {run_id} no longer waits for question {question!r}: {why}",
                                 "start a new run if the decision still matters", code="not_waiting")


async def _pick(request: Request, run_id: str, question: str | None) -> dict[str, Any]:
    """The question to answer: the one named, or the only one waiting."""
    data_dir = request.app.state.runtime.data_dir
    if question is not None:
        if not isinstance(question, str) or not question:
            raise InputError("'question' must be a question id (a step id)", "see GET /api/runs/RUN_ID/questions",
                             details=[{"path": "question", "message": "expected a non-empty string"}])
        record = await asyncio.to_thread(questions.read, run_id, question, data_dir)
        if record is None:
            known = [q["question"] for q in await asyncio.to_thread(questions.list_for, run_id, data_dir)]
            raise NotFoundError(f"run {run_id} has no question {question!r} (its questions: "
                                f"{', '.join(known) or 'none'})", "pick one from GET /api/runs/RUN_ID/questions")
        return record
    open_ = await asyncio.to_thread(questions.pending, run_id, data_dir)
    if len(open_) == 1:
        return open_[0]
    if len(open_) > 1:
        ids = ", ".join(q["question"] for q in open_)
        raise InputError(f"run {run_id} waits for {len(open_)} questions ({ids}): say which",
                         'send "question": ID (--question ID in the CLI)',
                         details=[{"path": "question", "message": f"one of: {ids}"}])
    asked = await asyncio.to_thread(questions.list_for, run_id, data_dir)
    if asked and asked[-1].get("answer") is not None:
        raise _settled_error(run_id, asked[-1])
    if asked:
        raise _not_waiting(run_id, asked[-1]["question"], f"it timed out at {asked[-1].get('expires_at')}")
    await _run_status(request.app.state.engine, run_id)   # 404 for a run the engine does not know
    raise NotFoundError(f"run {run_id} has asked no question", "answer a run that shows a question on its page")


def _settled_error(run_id: str, record: dict[str, Any]) -> QuestionConflictError:
    answer = record.get("answer") or {}
    question = str(record.get("question"))
    if answer.get("decision") == "timed_out":
        return _not_waiting(run_id, question, f"nobody answered before it timed out at {record.get('expires_at')}")
    by = f" by {answer['by']}" if answer.get("by") else ""
    return QuestionConflictError(
        f"question {question!r} of run {run_id} was already answered{by} at {answer.get('answered_at')} "
        f"({answer.get('decision')}); the first answer stands",
        "nothing to do: see the answer on the run page or in GET /api/runs/RUN_ID/questions",
        details=[{"path": "question", "message": question, "answer": answer}])


async def answer_question(request: Request, run_id: str, question: str | None, *, decision: str, answer: Any,
                          comment: str | None, by: str) -> dict[str, Any]:
    """Check, claim and send one answer; the question record with its answer."""
    state = request.app.state
    data_dir, engine = state.runtime.data_dir, state.engine
    record = await _pick(request, run_id, question)
    qid = str(record["question"])
    if record.get("answer") is not None:
        raise _settled_error(run_id, record)
    kind = record.get("kind")
    if decision == "answered" and kind == "approval":
        raise InputError(f"question {qid!r} asks for an approval, not an answer",
                         "approve or reject it (POST /api/runs/RUN_ID/approve, 'agentcmd runs approve')",
                         details=[{"path": "question", "message": "is an approval"}])
    if decision != "answered" and kind != "approval":
        raise InputError(f"question {qid!r} asks for an answer, not an approval",
                         "answer it (POST /api/runs/RUN_ID/answer, 'agentcmd runs answer --input JSON')",
                         details=[{"path": "question", "message": "is a question with a schema"}])
    try:
        status = await _run_status(engine, run_id)
    except NotFoundError:
        raise _not_waiting(run_id, qid, "the engine does not know the run (a dev engine keeps its runs in "
                                        "memory: restarting 'agentcmd dev' forgets them)") from None
    if status in TERMINAL:
        raise _not_waiting(run_id, qid, f"the run is {status}")
    if not questions.is_open(record):
        raise _not_waiting(run_id, qid, f"it timed out at {record.get('expires_at')}")
    if decision == "answered":
        questions.check_answer(record, answer)
    if comment is not None and not isinstance(comment, str):
        raise InputError("'comment' must be a string", "send a text comment, or none",
                         details=[{"path": "comment", "message": "expected string"}])
    data = {"run_id": run_id, "question": qid, "decision": decision, "answer": answer,
            "comment": comment or None, "by": by, "answered_at": questions.iso(questions.utc_now())}
    if not await asyncio.to_thread(questions.claim, run_id, qid, data, data_dir):
        settled = await asyncio.to_thread(questions.read, run_id, qid, data_dir)
        raise _settled_error(run_id, settled or record)
    from agentcmd.server.api import _send

    try:
        await _send(state.client, questions.ANSWER_EVENT, data)
    except BaseException:
        await asyncio.to_thread(questions.release, run_id, qid, data_dir)
        raise
    await asyncio.to_thread(questions.settle, run_id, qid, data, data_dir)
    _watch_delivery(request, data, str(record.get("expires_at") or ""))
    return await asyncio.to_thread(questions.read, run_id, qid, data_dir) or {**record, "answer": data}


def _watch_delivery(request: Request, data: dict[str, Any], expires_at: str) -> None:
    tasks: set[asyncio.Task[None]] = getattr(request.app.state, "question_deliveries", set())
    request.app.state.question_deliveries = tasks
    task = asyncio.get_running_loop().create_task(
        _deliver(request.app.state.engine, request.app.state.client, data, expires_at))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _deliver(engine: EngineRestClient, client: inngest.Inngest, data: dict[str, Any], expires_at: str) -> None:
    """Resend the answer until the engine stored the wait's result, the run ended, or the wait expired."""
    from agentcmd.server.api import _send

    run_id, qid = data["run_id"], data["question"]
    deadline = time.monotonic() + DELIVERY_WATCH_SECONDS
    with contextlib.suppress(ValueError):
        left = (datetime.datetime.fromisoformat(expires_at.replace("Z", "+00:00")) - questions.utc_now())
        deadline = min(deadline, time.monotonic() + max(0.0, left.total_seconds()))
    sent, delay = time.monotonic(), 0.1
    while time.monotonic() < deadline:
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, RESEND_SECONDS)
        try:
            if await _run_status(engine, run_id) in TERMINAL:
                return
            if any(s.get("name") == qid for s in await engine.run_steps(run_id)):
                return
            if time.monotonic() - sent >= RESEND_SECONDS:
                sent = time.monotonic()
                await _send(client, questions.ANSWER_EVENT, data)
        except Exception as exc:  # the engine away for a moment: try again, never fail the answer
            log.debug("watching the answer to %s of run %s: %s", qid, run_id, exc)


@router.get("/runs/{run_id}/questions")
async def list_questions(request: Request, run_id: str) -> dict[str, Any]:
    try:
        status = await _run_status(request.app.state.engine, run_id)
    except NotFoundError:
        if not await asyncio.to_thread(questions.list_for, run_id, request.app.state.runtime.data_dir):
            raise
        status = "Unknown"   # asked, but the engine forgot the run (a restarted dev engine): nothing waits
    return {"data": await run_questions(request, run_id, status)}


def _body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object", 'send e.g. {"approved": true}',
                         details=[{"path": "$", "message": "expected object"}])
    return body


@router.post("/runs/{run_id}/approve")
async def approve(request: Request, run_id: str, body: Any = Body(default=None)) -> dict[str, Any]:
    fields = _body(body)
    approved = fields.get("approved", True)
    if not isinstance(approved, bool):
        raise InputError("'approved' must be true or false", 'send {"approved": false} to reject',
                         details=[{"path": "approved", "message": "expected boolean"}])
    record = await answer_question(request, run_id, fields.get("question"),
                                   decision="approved" if approved else "rejected", answer=None,
                                   comment=fields.get("comment"), by=who(request))
    return {"data": record}


@router.post("/runs/{run_id}/answer")
async def answer(request: Request, run_id: str, body: Any = Body(default=None)) -> dict[str, Any]:
    fields = _body(body)
    if "answer" not in fields:
        raise InputError("the body needs an 'answer'", 'send {"answer": <JSON matching the question\'s schema>}',
                         details=[{"path": "answer", "message": "is required"}])
    record = await answer_question(request, run_id, fields.get("question"), decision="answered",
                                   answer=fields["answer"], comment=fields.get("comment"), by=who(request))
    return {"data": record}
