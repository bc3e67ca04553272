"""Bulk cancellation on a real SQLite store: which runs, one transaction, same as a single cancel."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID

from agentcmd.engine.flow import bulkcancel
from agentcmd.engine.store import Store, open_store, runs
from agentcmd.engine.store.models import RunSpec, RunStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "engine.db")
    yield s
    s.close()


def _runs(conn: sqlite3.Connection, slug: str, at: int, n: int, status: RunStatus = RunStatus.RUNNING) -> list[str]:
    specs = [RunSpec(str(ULID()), slug, "app", [{"name": "x/y", "data": {"i": i}}], f"E{slug}{at}-{i}", 1)
             for i in range(n)]
    runs.create_runs_txn(conn, specs, at, None)
    for spec in specs:
        conn.execute("UPDATE runs SET status=? WHERE run_id=?", (status.value, spec.run_id))
    return [s.run_id for s in specs]


async def _statuses(store: Store, run_ids: list[str]) -> list[str]:
    return await store.read(lambda c: [str(c.execute("SELECT status FROM runs WHERE run_id=?", (r,)).fetchone()[0])
                                       for r in run_ids])


async def _history(store: Store, run_id: str) -> list[tuple[str, str | None]]:
    return await store.read(lambda c: [(str(t), d) for t, d in c.execute(
        "SELECT type, detail FROM history WHERE run_id=? ORDER BY id", (run_id,))])


async def _queue_and_pauses(store: Store, run_id: str) -> tuple[int, int]:
    return await store.read(lambda c: (c.execute("SELECT count(*) FROM queue WHERE run_id=?", (run_id,)).fetchone()[0],
                                       c.execute("SELECT count(*) FROM pauses WHERE run_id=?",
                                                 (run_id,)).fetchone()[0]))


async def test_only_queued_and_running_runs_of_the_function_in_the_range_are_cancelled(store: Store) -> None:
    def fill(conn: sqlite3.Connection) -> dict[str, list[str]]:
        return {"before": _runs(conn, "app-f", 500, 1),
                "running": _runs(conn, "app-f", 1_000, 2),
                "queued": _runs(conn, "app-f", 2_000, 1, RunStatus.QUEUED),
                "completed": _runs(conn, "app-f", 2_000, 1, RunStatus.COMPLETED),
                "failed": _runs(conn, "app-f", 2_000, 1, RunStatus.FAILED),
                "after": _runs(conn, "app-f", 3_001, 1),
                "other": _runs(conn, "app-g", 2_000, 1)}

    ids = await store.write(fill)
    req = bulkcancel.CancelRequest(1_000, 3_000)
    cancelled = await store.write(lambda c: bulkcancel.cancel_txn(c, "app-f", req, 9_000, "bulk"))
    assert sorted(cancelled) == sorted(ids["running"] + ids["queued"])
    assert await _statuses(store, ids["running"] + ids["queued"]) == ["Cancelled"] * 3
    untouched = ids["before"] + ids["completed"] + ids["failed"] + ids["after"] + ids["other"]
    assert await _statuses(store, untouched) == ["Running", "Completed", "Failed", "Running", "Running"]
    again = await store.write(lambda c: bulkcancel.cancel_txn(c, "app-f", req, 9_500, "bulk"))
    assert again == [], "a second cancel of the same range finds nothing left to cancel"
    everything = await store.write(lambda c: bulkcancel.cancel_txn(c, "app-f", bulkcancel.CancelRequest(),
                                                                   9_900, "bulk"))
    assert sorted(everything) == sorted(ids["before"] + ids["after"]), "open ends: every active run of app-f"


async def test_a_bulk_cancelled_run_looks_exactly_like_a_single_cancelled_one(store: Store) -> None:
    single, bulk = await store.write(lambda c: (_runs(c, "app-s", 1_000, 1)[0], _runs(c, "app-b", 1_000, 1)[0]))
    await store.write(lambda c: runs.cancel_run_txn(c, single, 5_000, "why"))
    await store.write(lambda c: bulkcancel.cancel_txn(c, "app-b", bulkcancel.CancelRequest(), 5_000, "why"))
    assert (await _history(store, bulk))[1:] == (await _history(store, single))[1:] == [("run_cancelled", "why")]
    assert await _queue_and_pauses(store, bulk) == (0, 0) == await _queue_and_pauses(store, single)
    names = await store.read(lambda c: sorted(str(n) for (n,) in c.execute(
        "SELECT name FROM events WHERE name LIKE 'inngest/function.%'")))
    assert names == ["inngest/function.cancelled"] * 2 + ["inngest/function.finished"] * 2


async def test_the_cancels_are_one_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = await store.write(lambda c: _runs(c, "app-f", 1_000, 3))
    real = runs.cancel_run_txn
    calls: list[str] = []

    def failing(conn: sqlite3.Connection, run_id: str, now: int, reason: str) -> bool | None:
        calls.append(run_id)
        if len(calls) == 3:
            raise RuntimeError("crash half-way")
        return real(conn, run_id, now, reason)

    monkeypatch.setattr(runs, "cancel_run_txn", failing)
    with pytest.raises(RuntimeError, match="half-way"):
        await bulkcancel.cancel_runs(store, "app-f", bulkcancel.CancelRequest(), 5_000, "bulk")
    assert len(calls) == 3
    assert await _statuses(store, ids) == ["Running"] * 3, "the two cancels before the failure were rolled back"


async def test_more_runs_than_one_transaction_may_cancel_is_refused(store: Store,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulkcancel, "MAX_RUNS", 2)
    ids = await store.write(lambda c: _runs(c, "app-f", 1_000, 3))
    with pytest.raises(bulkcancel.CancelInputError, match="narrower"):
        await bulkcancel.cancel_runs(store, "app-f", bulkcancel.CancelRequest(), 5_000, "bulk")
    assert await _statuses(store, ids) == ["Running"] * 3


@pytest.mark.parametrize(("body", "words"), [
    ([], "JSON object"),
    ({"function_id": "f"}, "'app_id'"),
    ({"app_id": "a", "function_id": ""}, "'function_id'"),
    ({"app_id": "a", "function_id": "f", "if": "event.data.x == 1"}, "'if' expression"),
    ({"app_id": "a", "function_id": "f", "started_after": "yesterday"}, "not an RFC 3339"),
    ({"app_id": "a", "function_id": "f", "started_after": "2026-11-01T00:00:00"}, "no time zone"),
    ({"app_id": "a", "function_id": "f", "started_before": 5}, "must be an RFC 3339"),
    ({"app_id": "a", "function_id": "f", "started_after": "2026-11-02T00:00:00Z",
      "started_before": "2026-11-01T00:00:00Z"}, "is after"),
])
def test_bad_bodies_are_refused_with_what_is_wrong(body: Any, words: str) -> None:
    with pytest.raises(bulkcancel.CancelInputError, match=words):
        bulkcancel.parse_body(body)


def test_a_range_is_read_in_any_zone() -> None:
    app, fn, req = bulkcancel.parse_body({"app_id": "a", "function_id": "f",
                                          "started_after": "2026-11-01T00:00:00Z",
                                          "started_before": "2026-11-01T01:00:00+01:00"})
    assert (app, fn) == ("a", "f") and req.after_ms == req.before_ms
