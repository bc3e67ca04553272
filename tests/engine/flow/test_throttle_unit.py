"""Throttle as GCRA: starts for a stream of runs arriving at given times, with a fake clock."""

from __future__ import annotations

import sqlite3

import pytest

from agentcmd.engine.flow.throttle import capacity, next_start, slot_txn


def _starts(arrivals: list[int], period: int, limit: int, burst: int) -> list[int]:
    tat: int | None = None
    out = []
    for now in arrivals:
        start, tat = next_start(tat, now, period, limit, burst)
        out.append(start)
    return out


@pytest.mark.parametrize(("arrivals", "period", "limit", "burst", "starts"), [
    # one per second: each run waits for the previous one's period
    ([0, 0, 0], 1000, 1, 1, [0, 1000, 2000]),
    # three per 3 s: three at once, then one every 1 s (the emission interval), not a 3 s wait
    ([0, 0, 0, 0, 0], 3000, 3, 1, [0, 0, 0, 1000, 2000]),
    # burst 2 on one per second: two at once, then spaced
    ([0, 0, 0], 1000, 1, 2, [0, 0, 1000]),
    # runs that arrive slowly are never held back
    ([0, 1500, 3000], 1000, 1, 1, [0, 1500, 3000]),
    # a quiet spell refills the allowance
    ([0, 0, 10_000, 10_000], 1000, 1, 1, [0, 1000, 10_000, 11_000]),
])
def test_gcra_starts(arrivals: list[int], period: int, limit: int, burst: int, starts: list[int]) -> None:
    assert _starts(arrivals, period, limit, burst) == starts


def test_capacity_is_limit_plus_extra_burst() -> None:
    assert capacity(1, 1) == 1 and capacity(3, 1) == 3 and capacity(1, 3) == 3 and capacity(0, 0) == 1


def test_the_state_is_one_row_per_key() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE flow_marks (key TEXT NOT NULL, at INTEGER NOT NULL)")
    assert [slot_txn(conn, "th:f:a", 1, 1000, 1, 0) for _ in range(3)] == [0, 1000, 2000]
    assert slot_txn(conn, "th:f:b", 1, 1000, 1, 0) == 0
    assert conn.execute("SELECT key, at FROM flow_marks ORDER BY key").fetchall() == [("th:f:a", 3000),
                                                                                      ("th:f:b", 1000)]


def test_the_sweep_forgets_marks_that_cannot_change_a_decision() -> None:
    from agentcmd.engine.flow import RATE_MARKS_KEPT_MS, prune_marks_txn

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE flow_marks (key TEXT NOT NULL, at INTEGER NOT NULL)")
    slot_txn(conn, "th:f:gone", 1, 1000, 1, 0)              # tat 1000: in the past at 5000
    slot_txn(conn, "th:f:busy", 1, 60_000, 1, 4000)         # tat 64,000: still holds runs back at 5000
    now = RATE_MARKS_KEPT_MS + 2000
    conn.executemany("INSERT INTO flow_marks VALUES (?, ?)", [("rl:f:old", 1000), ("rl:f:recent", 3000)])
    assert prune_marks_txn(conn, 5000) == 1
    assert sorted(r[0] for r in conn.execute("SELECT key FROM flow_marks")) == ["rl:f:old", "rl:f:recent",
                                                                                "th:f:busy"]
    assert prune_marks_txn(conn, now) == 2                  # th:f:busy is past now; rl:f:old is a week old
    assert [r[0] for r in conn.execute("SELECT key FROM flow_marks")] == ["rl:f:recent"]
    # A pruned throttle key decides exactly as before: its past tat acted like no row.
    assert slot_txn(conn, "th:f:gone", 1, 1000, 1, now) == now


def test_a_throttle_row_in_the_past_is_the_same_as_none() -> None:
    assert next_start(1000, 5000, 1000, 1, 1) == next_start(None, 5000, 1000, 1, 1)
