"""``RunFilter.ended_after`` and ``GET /v1/runs?ended_after=``: runs that ended after a time (a cursor)."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from tests.engine.dashboard.seeder import Seeder

from agentcmd.engine.api.runfilter import run_filter
from agentcmd.engine.store import Store, queries
from agentcmd.engine.store.queries.models import RunFilter, rfc3339
from agentcmd.errors import InputError


def test_only_runs_that_ended_after_the_time_are_listed(store: Store, seed: Seeder) -> None:
    early = seed.run(status="Completed", at=1_000_000, duration_ms=1000)      # ended at 1_001_000
    late = seed.run(status="Failed", at=2_000_000, duration_ms=1000)          # ended at 2_001_000
    seed.run(status="Running", at=3_000_000)                                  # not ended
    cancelled = seed.run(status="Cancelled", at=500_000, duration_ms=2_000_000)  # created early, ended late

    def ended_after(ms: int) -> list[str]:
        runs, _ = queries.api_runs(store.db.conn, RunFilter(ended_after=ms), None, 50)
        return sorted(r["run_id"] for r in runs)

    assert ended_after(0) == sorted([early, late, cancelled])
    assert ended_after(1_001_000) == sorted([late, cancelled])   # strictly after
    assert ended_after(2_500_000) == []


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/v1/runs", "headers": [],
                    "query_string": query.encode()})


def test_the_rest_parameter_is_an_iso_time_and_a_bad_one_says_what_to_pass() -> None:
    filt, _ = run_filter(_request(f"ended_after={rfc3339(1_001_000)}"))
    assert filt.ended_after == 1_001_000
    with pytest.raises(InputError, match="'ended_after' must be an ISO time"):
        run_filter(_request("ended_after=yesterday-ish"))


def test_the_query_reads_the_ended_at_index_not_every_run(store: Store) -> None:
    """Notifications poll it every few seconds: 100k runs took 0.5 s a poll walking the run id index."""
    conn = store.db.conn
    plans: list[str] = []

    class Recorder:
        def execute(self, sql: str, args: object = ()) -> object:
            plans.append(" / ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args)))
            return conn.execute(sql, args)

    queries.api_runs(Recorder(), RunFilter(ended_after=1), None, 50)  # type: ignore[arg-type]
    [plan] = plans
    assert "runs_by_ended" in plan and "SCAN r USING INDEX sqlite_autoindex_runs_1" not in plan, plan
