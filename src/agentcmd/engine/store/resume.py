"""The SQL of a resume (``engine/flow/resume.py``): the run to resume, its kept steps, the links.

A resumed run is a new run whose ``steps`` table starts with a copy of
every ``completed`` step row of the run it resumes (``failed`` rows are
not copied, so a failed step runs again), and whose ``runs.resume_of``
names that run (migration 0009). Like every store ``*_txn``, none commits.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class ResumeSource:
    """What a resume needs of the old run."""

    run_id: str
    status: str
    function_slug: str
    event_id: str
    events_json: str


def source_txn(conn: sqlite3.Connection, run_id: str) -> ResumeSource | None:
    """The run to resume, or None if there is no such run."""
    row = conn.execute("SELECT run_id, status, function_slug, event_id, events FROM runs WHERE run_id=?",
                       (run_id,)).fetchone()
    if row is None:
        return None
    return ResumeSource(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]))


def resumed_as_txn(conn: sqlite3.Connection, run_id: str) -> str | None:
    """The run that already resumes ``run_id`` (the first one), or None."""
    row = conn.execute("SELECT run_id FROM runs WHERE resume_of=? ORDER BY run_id LIMIT 1", (run_id,)).fetchone()
    return str(row[0]) if row else None


def copy_completed_steps_txn(conn: sqlite3.Connection, old: str, new: str) -> int:
    """Copy ``old``'s completed step rows (memos, names, times) into ``new``; how many."""
    cur = conn.execute(
        "INSERT INTO steps (run_id, step_id, seq, name, op, memo, status, attempt, started_at, ended_at) "
        "SELECT ?, step_id, seq, name, op, memo, status, attempt, started_at, ended_at FROM steps "
        "WHERE run_id=? AND status='completed'", (new, old))
    return int(cur.rowcount)


def set_resume_of_txn(conn: sqlite3.Connection, new: str, old: str) -> None:
    """Record that ``new`` resumes ``old`` (migration 0009)."""
    conn.execute("UPDATE runs SET resume_of=? WHERE run_id=?", (old, new))


def resume_of(conn: sqlite3.Connection, run_id: str) -> str | None:
    """The run that ``run_id`` resumes, or None for a run that is not a resume."""
    row = conn.execute("SELECT resume_of FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return str(row[0]) if row and row[0] else None


def run_resumes(conn: sqlite3.Connection, run_id: str) -> list[str]:
    """The runs that resume ``run_id``, oldest first (partial index ``runs_by_resume_of``)."""
    return [str(r[0]) for r in conn.execute(
        "SELECT run_id FROM runs WHERE resume_of = ? ORDER BY run_id LIMIT 100", (run_id,))]
