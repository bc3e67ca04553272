"""The runs table and what belongs to a run: its steps (memos), history and pauses.

Creating runs, applying an SDK answer (memo + next calls + ack in one
transaction), finishing and cancelling them, and the ``inngest/function.*``
events a finished run emits. Like every store ``*_txn``, none commits.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from agentcmd.engine.store.events import IDEMPOTENCY_WINDOW_MS, insert_events_txn
from agentcmd.engine.store.models import (
    DISCOVERY,
    CallContext,
    MemoWrite,
    NewEvent,
    NewItem,
    NewPause,
    Outcome,
    QueueItem,
    QueueKind,
    RunSpec,
    RunStatus,
    canonical,
    dumps,
)
from agentcmd.engine.store.queue import (
    ack_txn,
    drop_run_items_txn,
    drop_step_items_txn,
    enqueue_txn,
    request_discovery_txn,
    retry_later_txn,
)
from agentcmd.errors import StoreError


class MemoConflictError(StoreError):
    """A step already has a different memo: the first result stands."""

    code = "memo_conflict"
    fix_hint = "nothing to do: the first result is kept (a step's result is written once)"


# Only these rows are leased back to the caller of apply_outcome_txn, which makes them SDK calls. A sleep
# already over when its answer is read (sleep_until a past time; a sleep shorter than the answer's trip)
# must go through its kind's handler, which memoises it: called as a step, the SDK would ask to sleep
# again, for ever. Left unleased, the woken worker takes it at once.
_CALL_KINDS = (QueueKind.START, QueueKind.STEP)


def load_context_txn(conn: sqlite3.Connection, item: QueueItem) -> CallContext | None:
    """The run state one SDK call needs, or None if the run or its function is gone."""
    row = conn.execute(
        "SELECT r.function_slug, f.url, r.first_event, r.events, r.force_plan, r.max_attempts, r.status, r.wait_since "
        "FROM runs r JOIN functions f ON f.slug=r.function_slug WHERE r.run_id=?", (item.run_id,)).fetchone()
    if row is None:
        return None
    steps = dict(conn.execute("SELECT step_id, memo FROM steps WHERE run_id=? ORDER BY seq", (item.run_id,)))
    return CallContext(item=item, run_id=str(item.run_id), function_slug=row[0], url=row[1],
                       event_json=row[2], events_json=row[3], steps=steps, force_plan=bool(row[4]),
                       max_attempts=int(row[5]), status=row[6], wait_since=row[7])


def create_runs_txn(conn: sqlite3.Connection, specs: Iterable[RunSpec], now: int,
                    lease_until: int | None) -> list[QueueItem]:
    """Create runs with their first call queued; skip runs whose idempotency key was seen."""
    items: list[QueueItem] = []
    for spec in specs:
        if spec.idem_key is not None and conn.execute(
                "SELECT 1 FROM runs WHERE idem_key=? AND created_at>=? LIMIT 1",
                (spec.idem_key, now - IDEMPOTENCY_WINDOW_MS)).fetchone():
            continue
        texts = [canonical(e) for e in spec.events]
        conn.execute(
            "INSERT INTO runs (run_id, function_slug, app_id, event_id, first_event, events, status, max_attempts, "
            "parent, idem_key, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (spec.run_id, spec.function_slug, spec.app_id, spec.event_id, texts[0] if texts else "{}",
             "[" + ",".join(texts) + "]",
             RunStatus.QUEUED.value, spec.max_attempts, spec.parent, spec.idem_key, now))
        for pause in spec.cancel_pauses:
            insert_pause_txn(conn, spec.run_id, pause)
        history_txn(conn, spec.run_id, now, "run_scheduled", None, None, spec.event_id)
        _observe(conn, "started", spec.run_id, spec.function_slug, None)
        start = max(now, spec.start_at or now)
        for which, ms in (("start", spec.start_timeout_ms), ("finish", spec.finish_timeout_ms)):
            if ms is not None:
                enqueue_txn(conn, spec.run_id, NewItem(QueueKind.RUN_TIMEOUT, None, start + ms, {"which": which}))
        lease = lease_until if start <= now else None
        item = enqueue_txn(conn, spec.run_id, NewItem(QueueKind.START, DISCOVERY, start), lease)
        if item is not None and lease is not None:
            items.append(item)
    return items


def _observe(conn: sqlite3.Connection, what: str, run_id: str, function: str, status: str | None) -> None:
    """Tell the engine's metrics (``EngineConnection.run_observer``), if any, that a run started or ended."""
    observer = getattr(conn, "run_observer", None)
    if observer is not None:
        observer(what, run_id, function, status)


def insert_pause_txn(conn: sqlite3.Connection, run_id: str, p: NewPause) -> None:
    conn.execute(
        "INSERT INTO pauses (kind, run_id, step_id, event_name, expression, correlation, after_event, expires_at, "
        "payload) VALUES (?,?,?,?,?,?,?,?,?)",
        (p.kind, run_id, p.step_id, p.event_name, p.expression, p.correlation,
         str(p.payload.get("after_event", "")), p.expires_at, dumps(p.payload)))


def history_txn(conn: sqlite3.Connection, run_id: str, at: int, type_: str, step_id: str | None,
                attempt: int | None, detail: str | None) -> None:
    conn.execute("INSERT INTO history (run_id, at, type, step_id, attempt, detail) VALUES (?,?,?,?,?,?)",
                 (run_id, at, type_, step_id, attempt, detail))


def save_step_txn(conn: sqlite3.Connection, run_id: str, m: MemoWrite, now: int, started: int | None = None) -> bool:
    """Memoize a step exactly once. True if stored; False if the same memo was already there.

    Raises ``MemoConflictError`` if a *different* memo is already stored.
    """
    memo = canonical(m.memo)
    cur = conn.execute(
        "INSERT INTO steps (run_id, step_id, seq, name, op, memo, status, attempt, started_at, ended_at) "
        "VALUES (?, ?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM steps WHERE run_id=?), ?,?,?,?,?,?,?) "
        "ON CONFLICT(run_id, step_id) DO NOTHING",
        (run_id, m.step_id, run_id, m.name, m.op, memo, "failed" if m.failed else "completed", m.attempt,
         m.started_at or started or now, now))
    if cur.rowcount == 1:
        return True
    row = conn.execute("SELECT memo FROM steps WHERE run_id=? AND step_id=?", (run_id, m.step_id)).fetchone()
    if row is not None and row[0] == memo:
        return False
    raise MemoConflictError(f"run {run_id} step {m.step_id} ({m.name}) already has a different result",
                            "the first stored result stands; this is a duplicate execution")


def apply_outcome_txn(conn: sqlite3.Connection, run_id: str, item: QueueItem | None, outcome: Outcome,
                      now: int, lease_until: int | None) -> list[QueueItem]:
    """Apply one SDK answer (or a timer / pause resolution) to a run, and ack ``item``.

    Returns the new items that were inserted already leased for the caller
    to run now. A run that already ended only gets the ack: late answers
    for cancelled runs are dropped.
    """
    row = conn.execute("SELECT status, pending, force_plan, race FROM runs WHERE run_id=?", (run_id,)).fetchone()
    if row is None or RunStatus(row[0]).final:
        if item is not None:
            ack_txn(conn, item.id)
        return []
    status = RunStatus(row[0])
    if outcome.retry_at is not None and item is not None:
        retry_later_txn(conn, item.id, outcome.retry_at)
        conn.execute("UPDATE runs SET status=?, started_at=COALESCE(started_at, ?), attempt=? WHERE run_id=?",
                     (RunStatus.RUNNING.value, outcome.called_at or now, item.attempt + 1, run_id))
        for type_, step, detail in outcome.history:
            history_txn(conn, run_id, now, type_, step, item.attempt, detail)
        return []
    again = item is not None and ack_txn(conn, item.id)
    pending: list[str] = json.loads(row[1])
    force = bool(row[2]) or outcome.force_plan
    race = bool(row[3])
    attempt = item.attempt if item is not None else 0
    for type_, step, detail in outcome.history:
        history_txn(conn, run_id, now, type_, step, attempt, detail)
    completed = False
    for memo in outcome.memos:
        try:
            save_step_txn(conn, run_id, memo, now, outcome.called_at)
        except MemoConflictError as exc:
            history_txn(conn, run_id, now, "memo_conflict", memo.step_id, attempt, exc.what)
        if memo.step_id in pending:
            pending.remove(memo.step_id)
        completed = True
    leased: list[QueueItem] = []
    for step_id, is_race in outcome.planned:
        race = race or is_race
        if step_id in pending or conn.execute(
                "SELECT 1 FROM steps WHERE run_id=? AND step_id=?", (run_id, step_id)).fetchone():
            continue
        pending.append(step_id)
        new = enqueue_txn(conn, run_id, NewItem(QueueKind.STEP, step_id, now, dedupe=f"plan:{run_id}:{step_id}"),
                          lease_until)
        if new is not None and lease_until is not None:
            leased.append(new)
    for step_id in outcome.waiting:
        if step_id not in pending:
            pending.append(step_id)
    for new_item in outcome.items:
        ready = new_item.ready_at <= now and lease_until is not None and new_item.kind in _CALL_KINDS
        new = enqueue_txn(conn, run_id, new_item, lease_until if ready else None)
        if new is not None and ready:
            leased.append(new)
    for pause in outcome.pauses:
        insert_pause_txn(conn, run_id, pause)
    if outcome.events:
        insert_events_txn(conn, outcome.events, now)
    if outcome.finish is not None:
        finish_run_txn(conn, run_id, *outcome.finish, now=now, started=outcome.called_at)
        return []
    idle = not (outcome.memos or outcome.planned or outcome.waiting or outcome.items or outcome.pauses)
    # ``again``: this call was out when a step asked for the body to run; what it saw is stale.
    if ((completed or again) and (not pending or race)) or (idle and not pending):
        force = False
        if not pending:
            race = False
        new = request_discovery_txn(conn, run_id, now, lease_until)
        if new is not None and lease_until is not None:
            leased.append(new)
    conn.execute(
        "UPDATE runs SET status=?, started_at=COALESCE(started_at, ?), pending=?, force_plan=?, race=?, attempt=? "
        "WHERE run_id=?",
        (RunStatus.RUNNING.value if status == RunStatus.QUEUED else status.value, outcome.called_at or now,
         dumps(pending), int(force), int(race), attempt, run_id))
    return leased


def mark_running_txn(conn: sqlite3.Connection, run_id: str, at: int) -> None:
    """A queued run's first call has gone out: Running, started at ``at`` (an ended run is left alone)."""
    conn.execute("UPDATE runs SET status=?, started_at=COALESCE(started_at, ?) WHERE run_id=? AND status=?",
                 (RunStatus.RUNNING.value, at, run_id, RunStatus.QUEUED.value))


def finish_run_txn(conn: sqlite3.Connection, run_id: str, status: RunStatus, output: str | None,
                   error: str | None, *, now: int, started: int | None = None) -> bool:
    """End a run: drop its queue items and pauses, emit the inngest/function.* events.

    Returns False if the run had already ended (nothing changes).
    """
    row = conn.execute("SELECT status, function_slug, events, parent FROM runs WHERE run_id=?",
                       (run_id,)).fetchone()
    if row is None or RunStatus(row[0]).final:
        return False
    conn.execute("UPDATE runs SET status=?, output=?, error=?, ended_at=?, pending='[]', "
                 "started_at=COALESCE(started_at, ?) WHERE run_id=?",
                 (status.value, output, error, now, started or now, run_id))
    drop_run_items_txn(conn, run_id)
    conn.execute("DELETE FROM pauses WHERE run_id=?", (run_id,))
    history_txn(conn, run_id, now, f"run_{status.value.lower()}", None, None, error)
    _observe(conn, "finished", run_id, row[1], status.value)
    insert_events_txn(conn, finish_events(run_id, row[1], json.loads(row[2]), row[3], status, output, error,
                                         now), now)
    return True


def finish_events(run_id: str, slug: str, events: list[dict[str, Any]], parent: str | None,
                  status: RunStatus, output: str | None, error: str | None, now: int) -> list[NewEvent]:
    """``inngest/function.finished`` (+ ``failed`` or ``cancelled``) for a run that ended."""
    from ulid import ULID

    data: dict[str, Any] = {"function_id": slug, "run_id": run_id,
                            "event": events[0] if events else {}, "events": events}
    if parent:
        data["correlation_id"] = parent
    if status == RunStatus.COMPLETED:
        try:
            data["result"] = json.loads(output) if output else None
        except ValueError:
            data["result"] = output
    elif status == RunStatus.FAILED:
        data["error"] = failure_error(output, error)
    out = [NewEvent(str(ULID()), "inngest/function.finished", {
        "name": "inngest/function.finished", "data": {**data, "_inngest": {"status": status.value}},
        "ts": now, "user": {}}, None, now)]
    if status == RunStatus.FAILED:
        out.append(NewEvent(str(ULID()), "inngest/function.failed", {
            "name": "inngest/function.failed", "id": run_id, "data": data, "ts": now, "user": {}}, None, now))
    elif status == RunStatus.CANCELLED:
        out.append(NewEvent(str(ULID()), "inngest/function.cancelled", {
            "name": "inngest/function.cancelled", "id": run_id, "data": data, "ts": now, "user": {}}, None, now))
    for ev in out:
        ev.body.setdefault("id", ev.internal_id)
    return out


def failure_error(output: str | None, transport: str | None) -> dict[str, Any]:
    """The ``data.error`` of function.failed: exactly error, name, message, stack."""
    body: dict[str, Any] = {}
    try:
        parsed = json.loads(output) if output else {}
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    return {"error": transport or "invalid status code: 500",
            "name": str(body.get("name") or "Error"),
            "message": str(body.get("message") or output or ""),
            "stack": body.get("stack") if isinstance(body.get("stack"), str) else ""}


def claim_pause_txn(conn: sqlite3.Connection, pause_id: int) -> tuple[str, str | None, str, dict[str, Any]] | None:
    """Take a pause (delete it); None if someone else already did. -> (run, step, kind, payload)."""
    row = conn.execute("DELETE FROM pauses WHERE id=? RETURNING run_id, step_id, kind, payload",
                       (pause_id,)).fetchone()
    if row is None:
        return None
    drop_step_items_txn(conn, str(row[0]), row[1], QueueKind.WAIT_TIMEOUT)
    return str(row[0]), row[1], str(row[2]), json.loads(row[3])


def claim_pause_by_step_txn(conn: sqlite3.Connection, run_id: str, step_id: str) -> dict[str, Any] | None:
    """Take a run's wait/invoke pause for a step (on timeout); None if it already resolved."""
    row = conn.execute("DELETE FROM pauses WHERE run_id=? AND step_id=? AND kind IN ('wait','invoke') "
                       "RETURNING payload", (run_id, step_id)).fetchone()
    return json.loads(row[0]) if row is not None else None


def timeout_state_txn(conn: sqlite3.Connection, run_id: str) -> tuple[RunStatus, int | None, str | None] | None:
    """(status, started_at, function config json) of a run whose timeout came due; None if unknown.

    The config is None if the run's function row is gone.
    """
    row = conn.execute("SELECT r.status, r.started_at, f.config FROM runs r LEFT JOIN functions f "
                       "ON f.slug=r.function_slug WHERE r.run_id=?", (run_id,)).fetchone()
    if row is None:
        return None
    return RunStatus(row[0]), None if row[1] is None else int(row[1]), None if row[2] is None else str(row[2])


def cancel_run_txn(conn: sqlite3.Connection, run_id: str, now: int, reason: str) -> bool | None:
    """Cancel a run. None if unknown, False if it had already ended."""
    row = conn.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
    if row is None:
        return None
    return finish_run_txn(conn, run_id, RunStatus.CANCELLED, None, reason, now=now)


def runs_in_range_txn(conn: sqlite3.Connection, slug: str, from_ms: int, to_ms: int, statuses: Iterable[str],
                      limit: int) -> list[tuple[str, str, str]]:
    """(run_id, event_id, events json) of a function's runs created in [from_ms, to_ms], oldest first.

    ``statuses`` empty: any status. At most ``limit`` rows.
    """
    wanted = list(statuses)
    where = "function_slug=? AND created_at BETWEEN ? AND ?"
    args: list[Any] = [slug, from_ms, to_ms]
    if wanted:
        where += f" AND status IN ({','.join('?' * len(wanted))})"
        args += wanted
    rows = conn.execute(f"SELECT run_id, event_id, events FROM runs WHERE {where} ORDER BY created_at, run_id "
                        "LIMIT ?", (*args, limit)).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def set_replay_of_txn(conn: sqlite3.Connection, pairs: list[tuple[str, str]]) -> None:
    """Record, for each (new run, original run), the run the new one replays (migration 0006)."""
    conn.executemany("UPDATE runs SET replay_of=? WHERE run_id=?", [(old, new) for new, old in pairs])
