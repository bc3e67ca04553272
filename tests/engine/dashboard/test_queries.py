"""The dashboard's own SQL pages through an index: no query sorts or loads a whole table."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from agentcmd.engine.store import Store, queries
from agentcmd.engine.store.queries.models import RunFilter


class Recorder:
    """A connection stand-in that records each statement's query plan, then runs it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.plans: list[str] = []

    def execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        plan = self.conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
        self.plans.append(" / ".join(str(row[-1]) for row in plan))
        return self.conn.execute(sql, args)


@pytest.mark.parametrize(("filt", "before"), [
    (RunFilter(), None),
    (RunFilter(), "01ZZZZZZZZZZZZZZZZZZZZZZZZ"),
    (RunFilter(status="Failed"), None),
    (RunFilter(function="agentcmd-build"), "01ZZZZZZZZZZZZZZZZZZZZZZZZ"),
    (RunFilter(since=0, until=2**40), None),
    (RunFilter(status=("Failed", "Cancelled"), function="uuid-of-a-function"), "01ZZZZZZZZZZZZZZZZZZZZZZZZ"),
])
@pytest.mark.parametrize("query", [queries.list_runs, queries.api_runs])  # the dashboard's and GET /v1/runs
def test_runs_pages_walk_an_index_newest_first(store: Store, filt: RunFilter, before: str | None,
                                               query: Any) -> None:
    rec = Recorder(store.db.conn)
    query(rec, filt, before, 50)
    [plan] = rec.plans
    assert "TEMP B-TREE" not in plan, plan  # no sort of the whole (filtered) table
    assert "USING INDEX" in plan or "USING PRIMARY KEY" in plan or "USING INTEGER PRIMARY KEY" in plan, plan
    if filt.function:
        assert "runs_by_function" in plan, plan  # by slug or by uuid, one index range of that function's runs


def test_events_pages_walk_an_index(store: Store) -> None:
    rec = Recorder(store.db.conn)
    queries.list_events(rec, "app/x", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", 50)  # type: ignore[arg-type]
    queries.list_events(rec, None, None, 50)  # type: ignore[arg-type]
    queries.api_events(rec, "app/x", 20, "01ZZZZZZZZZZZZZZZZZZZZZZZZ")  # type: ignore[arg-type]
    for plan in rec.plans:
        assert "TEMP B-TREE" not in plan, plan
