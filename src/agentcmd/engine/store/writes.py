"""Write transactions: ``*_txn(conn, ...)`` functions that never commit.

Each is called inside ``Database.write`` (one ``BEGIN IMMEDIATE`` shared
with other callers), so "store the step's memo + enqueue the next call +
ack the current item" is a single commit (DESIGN: commit before calling
out). Nothing here performs I/O other than SQL.

Items that are ready now and that the caller will run at once are inserted
already leased (``lease``), so the hot path makes one transaction per step,
not two.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

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
)
from agentcmd.errors import StoreError

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000
_ITEM_COLS = "id, kind, run_id, step_id, ready_at, attempt, payload"


class MemoConflictError(StoreError):
    """A step already has a different memo: the first result stands."""

    code = "memo_conflict"
    fix_hint = "nothing to do: the first result is kept (a step's result is written once)"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:
    from agentcmd.engine.protocol import canonical as _canonical

    return _canonical(value)


def _item(row: tuple[Any, ...]) -> QueueItem:
    return QueueItem(int(row[0]), QueueKind(row[1]), row[2], row[3], int(row[4]), int(row[5]),
                     json.loads(row[6]) if row[6] else {})


# -- apps and functions -----------------------------------------------------------------------

def upsert_app_txn(conn: sqlite3.Connection, app_id: str, url: str, sdk: str, framework: str,
                   checksum: str, functions: list[tuple[str, str, str, str, str]], now: int) -> list[str]:
    """Replace an app's functions; ``functions`` = (slug, uuid, name, url, config json).

    Functions the app no longer lists are archived (they stop matching).
    Returns the slugs that were archived.
    """
    conn.execute(
        "INSERT INTO apps (app_id, url, sdk, framework, checksum, error, synced_at) VALUES (?,?,?,?,?,NULL,?) "
        "ON CONFLICT(app_id) DO UPDATE SET url=excluded.url, sdk=excluded.sdk, framework=excluded.framework, "
        "checksum=excluded.checksum, error=NULL, synced_at=excluded.synced_at",
        (app_id, url, sdk, framework, checksum, now))
    keep = {f[0] for f in functions}
    archived = [r[0] for r in conn.execute(
        "SELECT slug FROM functions WHERE app_id=? AND archived=0", (app_id,)) if r[0] not in keep]
    for slug in archived:
        conn.execute("UPDATE functions SET archived=1, updated_at=? WHERE slug=?", (now, slug))
        conn.execute("DELETE FROM queue WHERE kind=? AND payload LIKE ?",
                      (QueueKind.CRON.value, f'%"function":{json.dumps(slug)}%'))
    for slug, fn_uuid, name, fn_url, config in functions:
        conn.execute(
            "INSERT INTO functions (slug, uuid, app_id, name, url, config, archived, updated_at) "
            "VALUES (?,?,?,?,?,?,0,?) ON CONFLICT(slug) DO UPDATE SET app_id=excluded.app_id, "
            "name=excluded.name, url=excluded.url, config=excluded.config, archived=0, "
            "updated_at=excluded.updated_at",
            (slug, fn_uuid, app_id, name, fn_url, config, now))
    return archived


def set_app_error_txn(conn: sqlite3.Connection, url: str, error: str | None, now: int) -> None:
    conn.execute("UPDATE apps SET error=? WHERE url=?", (error, url))


# -- events ----------------------------------------------------------------------------------

def insert_events_txn(conn: sqlite3.Connection, events: Iterable[NewEvent], now: int,
                      dispatch: bool = True, leased: list[QueueItem] | None = None,
                      lease_until: int | None = None) -> list[str]:
    """Store events and queue their dispatch; return their internal ids.

    An event whose sender ``id`` was already seen within 24 h is not stored
    again: its first internal id is returned and no run starts twice. With
    ``leased`` and ``lease_until`` the dispatch rows are inserted already
    leased and appended to ``leased`` for the caller to run at once.
    """
    ids: list[str] = []
    for ev in events:
        if ev.user_id:
            row = conn.execute(
                "SELECT internal_id FROM events WHERE user_id=? AND name=? AND received_at>=? LIMIT 1",
                (ev.user_id, ev.name, now - IDEMPOTENCY_WINDOW_MS)).fetchone()
            if row is not None:
                ids.append(str(row[0]))
                continue
        cur = conn.execute(
            "INSERT INTO events (internal_id, name, body, user_id, ts, received_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(internal_id) DO NOTHING", (ev.internal_id, ev.name, dumps(ev.body), ev.user_id, ev.ts, now))
        if cur.rowcount == 0:
            # A client retry with the same x-inngest-event-id-seed: same ids, already stored and dispatched.
            ids.append(ev.internal_id)
            continue
        if dispatch and _needs_dispatch(conn, ev):
            item = enqueue_txn(conn, None, NewItem(QueueKind.EVENT, None, now, {"event_id": ev.internal_id}),
                               lease_until if leased is not None else None)
            if leased is not None and item is not None:
                leased.append(item)
        ids.append(ev.internal_id)
    return ids


def _needs_dispatch(conn: sqlite3.Connection, ev: NewEvent) -> bool:
    """Skip matching for internal events nobody listens to (every run ends with one or two).

    User events are always dispatched; so are ``function.invoked`` (it starts
    the invoked run), an event that resolves an invoke (it carries a
    correlation id) and one that some pause waits for.
    """
    flt = getattr(conn, "dispatch_filter", None)
    if flt is None or not ev.name.startswith("inngest/") or ev.name == "inngest/function.invoked" or flt(ev.name):
        return True
    if (ev.body.get("data") or {}).get("correlation_id"):
        return True
    return conn.execute("SELECT 1 FROM pauses WHERE event_name=? LIMIT 1", (ev.name,)).fetchone() is not None


# -- queue -----------------------------------------------------------------------------------

EVENT_SHARE = 8    # 1/EVENT_SHARE of each lease is kept for new events' dispatch


def lease_due_txn(conn: sqlite3.Connection, now: int, limit: int, lease_until: int) -> list[QueueItem]:
    """Lease up to ``limit`` due, unleased items: runs' own work first, then new events.

    Two lanes, each oldest first (index ``queue_by_lane``, migration 0007):
    the work of runs that exist (next calls, sleep wake-ups, timeouts,
    retries, timers) and the dispatch of accepted events. Taking the first
    lane first keeps a flood of 10,000 events from delaying a sleep that is
    due now behind every event accepted before it; an eighth of each lease
    (``EVENT_SHARE``) still goes to events so new runs keep starting while
    existing runs are busy. Within a lane, order is ``ready_at`` then id.
    """
    share = min(limit // EVENT_SHARE, limit)
    events = _lease_lane(conn, True, now, share, lease_until) if share else []
    runs = _lease_lane(conn, False, now, limit - len(events), lease_until)
    if len(events) + len(runs) < limit and len(events) == share:
        events += _lease_lane(conn, True, now, limit - len(events) - len(runs), lease_until)
    return runs + events


def _lease_lane(conn: sqlite3.Connection, events: bool, now: int, limit: int,
                lease_until: int) -> list[QueueItem]:
    if limit <= 0:
        return []
    rows = conn.execute(
        f"UPDATE queue SET lease_until=?, dedupe=NULL WHERE id IN (SELECT id FROM queue WHERE lease_until IS NULL "
        f"AND (kind = 'event') = ? AND ready_at<=? ORDER BY ready_at, id LIMIT ?) RETURNING {_ITEM_COLS}",
        (lease_until, int(events), now, limit)).fetchall()
    return sorted((_item(r) for r in rows), key=lambda i: (i.ready_at, i.id))


def requeue_leases_txn(conn: sqlite3.Connection, expired_before: int | None) -> int:
    """Free leased items (all of them at startup, else those whose lease ran out)."""
    if expired_before is None:
        from agentcmd.engine.flow.concurrency import recover_txn

        recover_txn(conn)   # nothing is in flight at startup: calls parked on full concurrency keys resume
        cur = conn.execute("UPDATE queue SET lease_until=NULL WHERE lease_until IS NOT NULL")
    else:
        cur = conn.execute("UPDATE queue SET lease_until=NULL WHERE lease_until IS NOT NULL AND lease_until<?",
                           (expired_before,))
    return cur.rowcount


def release_leases_txn(conn: sqlite3.Connection, item_ids: list[int]) -> None:
    """Give leased items back to the queue as they are (same ``ready_at`` and attempt): due again now."""
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start:start + 500]
        conn.execute(f"UPDATE queue SET lease_until=NULL WHERE id IN ({','.join('?' * len(chunk))})", chunk)


def enqueue_txn(conn: sqlite3.Connection, run_id: str | None, item: NewItem,
                lease_until: int | None = None) -> QueueItem | None:
    """Insert one item; with a ``dedupe`` key already queued, nothing is inserted (None)."""
    row = conn.execute(
        f"INSERT INTO queue (kind, run_id, step_id, ready_at, lease_until, attempt, payload, dedupe) "
        f"VALUES (?,?,?,?,?,0,?,?) ON CONFLICT(dedupe) DO NOTHING RETURNING {_ITEM_COLS}",
        (item.kind.value, run_id, item.step_id, item.ready_at, lease_until, dumps(item.payload),
         item.dedupe)).fetchone()
    return _item(row) if row is not None else None


def upsert_timer_txn(conn: sqlite3.Connection, item: NewItem) -> None:
    """Insert or move a keyed timer (debounce): the newest payload and ready time win."""
    conn.execute(
        "INSERT INTO queue (kind, run_id, step_id, ready_at, payload, dedupe) VALUES (?,?,?,?,?,?) "
        "ON CONFLICT(dedupe) DO UPDATE SET ready_at=excluded.ready_at, payload=excluded.payload",
        (item.kind.value, None, item.step_id, item.ready_at, dumps(item.payload), item.dedupe))


def defer_txn(conn: sqlite3.Connection, item_id: int, ready_at: int) -> None:
    """Give a leased item back to the queue, due at ``ready_at``, same attempt."""
    conn.execute("UPDATE queue SET lease_until=NULL, ready_at=? WHERE id=?", (ready_at, item_id))


def ack_txn(conn: sqlite3.Connection, item_id: int) -> None:
    conn.execute("DELETE FROM queue WHERE id=?", (item_id,))


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


# -- runs ------------------------------------------------------------------------------------

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
        start = max(now, spec.start_at or now)
        for which, ms in (("start", spec.start_timeout_ms), ("finish", spec.finish_timeout_ms)):
            if ms is not None:
                enqueue_txn(conn, spec.run_id, NewItem(QueueKind.RUN_TIMEOUT, None, start + ms, {"which": which}))
        lease = lease_until if start <= now else None
        item = enqueue_txn(conn, spec.run_id, NewItem(QueueKind.START, DISCOVERY, start), lease)
        if item is not None and lease is not None:
            items.append(item)
    return items


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
        conn.execute("UPDATE queue SET attempt=attempt+1, ready_at=?, lease_until=NULL WHERE id=?",
                     (outcome.retry_at, item.id))
        conn.execute("UPDATE runs SET status=?, started_at=COALESCE(started_at, ?), attempt=? WHERE run_id=?",
                     (RunStatus.RUNNING.value, outcome.called_at or now, item.attempt + 1, run_id))
        for type_, step, detail in outcome.history:
            history_txn(conn, run_id, now, type_, step, item.attempt, detail)
        return []
    if item is not None:
        ack_txn(conn, item.id)
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
        ready = new_item.ready_at <= now and lease_until is not None
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
    if (completed and (not pending or race)) or (idle and not pending):
        force = False
        if not pending:
            race = False
        new = enqueue_txn(conn, run_id, NewItem(QueueKind.STEP, DISCOVERY, now, dedupe=f"disc:{run_id}"),
                          lease_until)
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
    conn.execute("DELETE FROM queue WHERE run_id=?", (run_id,))
    conn.execute("DELETE FROM pauses WHERE run_id=?", (run_id,))
    history_txn(conn, run_id, now, f"run_{status.value.lower()}", None, None, error)
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
    conn.execute("DELETE FROM queue WHERE run_id=? AND step_id=? AND kind=?",
                 (row[0], row[1], QueueKind.WAIT_TIMEOUT.value))
    return str(row[0]), row[1], str(row[2]), json.loads(row[3])


def claim_pause_by_step_txn(conn: sqlite3.Connection, run_id: str, step_id: str) -> dict[str, Any] | None:
    """Take a run's wait/invoke pause for a step (on timeout); None if it already resolved."""
    row = conn.execute("DELETE FROM pauses WHERE run_id=? AND step_id=? AND kind IN ('wait','invoke') "
                       "RETURNING payload", (run_id, step_id)).fetchone()
    return json.loads(row[0]) if row is not None else None


def run_timeout_txn(conn: sqlite3.Connection, item: QueueItem, now: int) -> bool:
    """A ``run_timeout`` row came due: cancel the run if it is still not started/finished."""
    ack_txn(conn, item.id)
    row = conn.execute("SELECT status FROM runs WHERE run_id=?", (item.run_id,)).fetchone()
    if row is None or RunStatus(row[0]).final:
        return False
    which = item.payload.get("which")
    if which == "start" and row[0] != RunStatus.QUEUED.value:
        return False
    from agentcmd.engine.flow.timeouts import postpone_finish_txn

    if which == "finish" and postpone_finish_txn(conn, item, now):
        return False    # measured from the run's start, which came later than its scheduling
    reason = f"timeouts.{which}: the run did not {'start' if which == 'start' else 'finish'} in time"
    return finish_run_txn(conn, str(item.run_id), RunStatus.CANCELLED, None, reason, now=now)


def cancel_run_txn(conn: sqlite3.Connection, run_id: str, now: int, reason: str) -> bool | None:
    """Cancel a run. None if unknown, False if it had already ended."""
    row = conn.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
    if row is None:
        return None
    return finish_run_txn(conn, run_id, RunStatus.CANCELLED, None, reason, now=now)
