"""Interrupted SDK calls and runs waiting for their app (docs/engine.md, interrupted calls): write transactions.

An interrupted call is not an attempt: the queue row goes back with the
same ``attempt`` (never ``attempt + 1``), and the history says
``attempt_interrupted`` instead of ``attempt_failed``. Two kinds:

* the app did not answer (refused, reset or closed before the response
  head, its 503-interrupted): the run *waits for its app*. ``runs.wait_since``
  marks when that began (one history row then, not one per try); the call is
  tried again every ``RETRY_MS``; the first real answer clears the wait
  (``clear_txn``); after ``limit_ms`` of waiting the run fails naming the URL
  and the setting.
* the engine itself stopped during the call (SIGTERM, or a crash found at the
  next start): the row is due at once, so the call goes out again as soon
  as the engine runs.

Like every ``*_txn`` here, none of these commits.
"""

from __future__ import annotations

import json
import sqlite3

from agentcmd.engine.store.models import QueueItem, RunStatus
from agentcmd.engine.store.queue import ack_txn, defer_txn, interrupt_lease_txn, leased_calls_txn
from agentcmd.engine.store.runs import finish_run_txn, history_txn

RETRY_MS = 500           # how often a waiting run asks its app again
INTERRUPTED = "attempt_interrupted"
SETTING = "the app wait timeout (--app-wait-timeout, AGENTCMD_ENGINE_APP_WAIT_TIMEOUT or engine_app_wait_timeout)"


def _iso(ms: int) -> str:
    from agentcmd.engine.protocol import iso_ms

    return str(iso_ms(ms))


def wait_error(app_id: str, url: str, since: int, now: int, limit_ms: int, reason: str) -> str:
    """The failed run's error: which app, which URL, since when, and the setting that gave up."""
    return (f"app {app_id} unreachable at {url} since {_iso(since)} ({(now - since) / 1000:.0f} s, longer than "
            f"{SETTING} = {limit_ms / 1000:g} s): {reason}; start the app (or fix its URL) and rerun the run, "
            "or raise the app wait timeout if the app can be away longer")


def app_interrupted_txn(conn: sqlite3.Connection, item: QueueItem, url: str, reason: str, now: int,
                        limit_ms: int) -> bool:
    """The app gave no answer: wait for it (requeue, same attempt), or fail the run past ``limit_ms``.

    Returns True if the run failed (it waited too long).
    """
    run_id = str(item.run_id)
    row = conn.execute("SELECT status, wait_since, wait_reason, app_id FROM runs WHERE run_id=?",
                       (run_id,)).fetchone()
    if row is None or RunStatus(row[0]).final:
        ack_txn(conn, item.id)
        return False
    since = row[1]
    if since is None:
        conn.execute("UPDATE runs SET wait_since=?, wait_url=?, wait_reason=? WHERE run_id=?",
                     (now, url, reason, run_id))
        history_txn(conn, run_id, now, INTERRUPTED, item.step_id, item.attempt,
                    f"{reason}; waiting for app {row[3]}, trying again every {RETRY_MS / 1000:g} s")
    elif now - int(since) >= limit_ms:
        error = wait_error(str(row[3]), url, int(since), now, limit_ms, reason)
        output = json.dumps({"name": "EngineError", "message": error, "code": "app_unreachable"})
        finish_run_txn(conn, run_id, RunStatus.FAILED, output, error, now=now)
        return True
    elif row[2] != reason:
        conn.execute("UPDATE runs SET wait_url=?, wait_reason=? WHERE run_id=?", (url, reason, run_id))
    defer_txn(conn, item.id, now + RETRY_MS)
    return False


def engine_interrupted_txn(conn: sqlite3.Connection, item: QueueItem, reason: str, now: int) -> None:
    """The engine stopped during this call: due again at once, same attempt (if the row is still ours)."""
    if interrupt_lease_txn(conn, item.id, now) and item.run_id:
        history_txn(conn, str(item.run_id), now, INTERRUPTED, item.step_id, item.attempt, reason)


def clear_txn(conn: sqlite3.Connection, run_id: str) -> None:
    """The app answered: the run no longer waits for it."""
    conn.execute("UPDATE runs SET wait_since=NULL, wait_url=NULL, wait_reason=NULL WHERE run_id=? "
                 "AND wait_since IS NOT NULL", (run_id,))


def resume_txn(conn: sqlite3.Connection, now: int) -> int:
    """At startup, before leases are freed: calls a previous process left in flight were interrupted.

    Their rows keep their attempt (the caller frees the leases; their ready
    time has passed, so they run at once). Runs that were waiting for their
    app count their wait from now: the engine's own downtime is not the app's.
    Returns the number of interrupted calls.
    """
    rows = leased_calls_txn(conn)
    for run_id, step_id, attempt in rows:
        history_txn(conn, run_id, now, INTERRUPTED, step_id, attempt,
                    "the engine stopped during this call (killed or crashed); the call runs again now")
    conn.execute("UPDATE runs SET wait_since=? WHERE wait_since IS NOT NULL", (now,))
    return len(rows)


def waiting_for_app(status: str, app_id: str, since: int | None, url: str | None,
                    reason: str | None) -> dict[str, object] | None:
    """REST's ``waiting_for_app``: {app_id, url, since (ms epoch), reason}, or None."""
    if since is None or RunStatus(status).final:
        return None
    return {"app_id": app_id, "url": url or "", "since": int(since), "reason": reason or ""}
