"""Throttle: when the next run under a key may start (GCRA, as Inngest's queue does).

``throttle: {limit, period, burst, key}`` limits how many runs *start* per
``period``; runs over it are not dropped, they start later. Inngest uses the
generic cell rate algorithm with an emission interval ``T = period / limit``
and, in its queue, lets ``limit + burst - 1`` runs through at once
("the queue does not follow a uniform arrival rate"); after such a burst,
runs are spaced ``T`` apart. One number per key carries the whole state: the
theoretical arrival time (``tat``), kept in ``flow_marks`` (migration 0002)
as the key's latest row, so it survives restarts with the dispatch commit.
"""

from __future__ import annotations

import sqlite3

from agentcmd.engine.store import flow as flow_rows


def capacity(limit: int, burst: int) -> int:
    """How many runs may start at the same instant."""
    return max(1, limit + max(burst, 1) - 1)


def next_start(tat: int | None, now: int, period_ms: int, limit: int, burst: int) -> tuple[int, int]:
    """(when this run starts, the key's new tat). Pure: the table tests drive it with a fake clock."""
    emission = period_ms / max(limit, 1)
    tolerance = (capacity(limit, burst) - 1) * emission
    current = max(tat if tat is not None else now, now)
    start = max(now, int(current - tolerance))
    return start, int(max(current, start) + emission)


def slot_txn(conn: sqlite3.Connection, key: str, limit: int, period_ms: int, burst: int, now: int) -> int:
    """Reserve the next start under ``key``; returns its time (``now`` if not throttled)."""
    start, new_tat = next_start(flow_rows.latest_mark_txn(conn, key), now, period_ms, limit, burst)
    flow_rows.replace_mark_txn(conn, key, new_tat)
    return start
