"""Replay request parsing and run selection on a real SQLite store (the integration test drives the route)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from ulid import ULID

from agentcmd.engine.flow import replay
from agentcmd.engine.store import Store, open_store, runs
from agentcmd.engine.store.models import RunSpec, RunStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "engine.db")
    yield s
    s.close()


def _runs(conn: sqlite3.Connection, slug: str, at: int, n: int, status: RunStatus = RunStatus.COMPLETED) -> None:
    specs = [RunSpec(str(ULID()), slug, "app", [{"name": "x/y", "data": {"i": i}}], f"E{at}-{i}", 1)
             for i in range(n)]
    runs.create_runs_txn(conn, specs, at, None)
    for spec in specs:
        conn.execute("UPDATE runs SET status=? WHERE run_id=?", (status.value, spec.run_id))


def test_statuses_are_matched_case_insensitively_and_the_range_is_inclusive() -> None:
    req = replay.parse_request({"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T01:00:00+01:00",
                                "status": ["failed", "Cancelled"]})
    assert req.statuses == ("Failed", "Cancelled")
    assert req.from_ms == req.to_ms, "the same instant written in two zones"


async def test_selection_keeps_the_function_the_range_and_the_statuses(store: Store) -> None:
    def fill(conn: sqlite3.Connection) -> None:
        _runs(conn, "app-f", 1_000, 2)
        _runs(conn, "app-f", 2_000, 1, RunStatus.FAILED)
        _runs(conn, "app-f", 3_001, 1)            # after the range
        _runs(conn, "app-g", 2_000, 1)            # another function

    await store.write(fill)
    every = replay.ReplayRequest(1_000, 3_000, ())
    failed = replay.ReplayRequest(1_000, 3_000, ("Failed",))
    assert len(await store.write(lambda c: replay.runs_to_replay_txn(c, "app-f", every))) == 3
    rows = await store.write(lambda c: replay.runs_to_replay_txn(c, "app-f", failed))
    assert [r[1] for r in rows] == ["E2000-0"]


async def test_more_runs_than_one_transaction_may_replay_is_refused(store: Store,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "MAX_RUNS", 2)
    await store.write(lambda c: _runs(c, "app-f", 1_000, 3))
    with pytest.raises(replay.ReplayInputError, match="narrower"):
        await store.write(lambda c: replay.runs_to_replay_txn(c, "app-f", replay.ReplayRequest(0, 5_000, ())))
    assert replay.ReplayInputError.http_status == 400
