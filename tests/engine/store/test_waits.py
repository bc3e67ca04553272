"""store/waits.py against both store modes, with a hand-ticked clock: what an interrupted call does to a run.

The end-to-end behaviour (real engine, real SDK app) is tests/engine/test_interruptions.py;
here are the rules that need exact times: same attempt, one history entry per wait, retry
every RETRY_MS, failure only past the limit, and the engine's downtime not counted.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.engine.store.test_store import _run, store  # noqa: F401  (the fixture, both modes)

from agentcmd.engine.store import Store, queries, waits
from agentcmd.engine.store.models import QueueItem, RunStatus

URL = "http://127.0.0.1:4100/api/inngest"
T0 = 2_000_000_000_000


async def _lease(store: Store, now: int) -> QueueItem:  # noqa: F811
    [item] = await store.lease_due(now, 10, now + 60_000)
    return item


def _queue(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT ready_at, lease_until, attempt FROM queue WHERE kind IN ('start', 'step')").fetchall()


def _history(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT at, type, attempt FROM history WHERE type != 'run_scheduled' ORDER BY id").fetchall()


async def test_an_unanswered_call_waits_with_the_same_attempt_then_fails_past_the_limit(store: Store) -> None:  # noqa: F811
    await _run(store)
    item = await _lease(store, T0)
    assert not await store.write(lambda c: waits.app_interrupted_txn(c, item, URL, "refused", T0, 10_000))
    assert await store.read(_queue) == [(T0 + waits.RETRY_MS, None, 0)]
    run = await store.read(lambda c: queries.get_run(c, "01RUN"))
    assert run is not None and run["waiting_for_app"] == {"app_id": "app", "url": URL, "since": T0,
                                                          "reason": "refused"}
    for t in range(T0 + 500, T0 + 10_000, 500):              # still waiting: tried again, nothing added
        item = await _lease(store, t)
        assert not await store.write(lambda c, i=item, t=t: waits.app_interrupted_txn(c, i, URL, "refused", t,
                                                                                        10_000))
    assert await store.read(_history) == [(T0, "attempt_interrupted", 0)]
    item = await _lease(store, T0 + 10_000)
    assert await store.write(lambda c: waits.app_interrupted_txn(c, item, URL, "reset", T0 + 10_000, 10_000))
    run = await store.read(lambda c: queries.get_run(c, "01RUN"))
    assert run is not None and run["status"] == RunStatus.FAILED and run["waiting_for_app"] is None
    assert run["error"].startswith(f"app app unreachable at {URL} since ") and "reset" in run["error"]
    assert run["output"]["code"] == "app_unreachable" and await store.read(_queue) == []


async def test_an_answer_clears_the_wait_and_the_next_one_starts_afresh(store: Store) -> None:  # noqa: F811
    await _run(store)
    item = await _lease(store, T0)
    await store.write(lambda c: waits.app_interrupted_txn(c, item, URL, "refused", T0, 10_000))
    await store.write(lambda c: waits.clear_txn(c, "01RUN"))
    run = await store.read(lambda c: queries.get_run(c, "01RUN"))
    assert run is not None and run["waiting_for_app"] is None
    item = await _lease(store, T0 + 20_000)
    assert not await store.write(lambda c: waits.app_interrupted_txn(c, item, URL, "refused", T0 + 20_000, 10_000))
    assert [h[1] for h in await store.read(_history)] == ["attempt_interrupted", "attempt_interrupted"]


async def test_at_startup_calls_left_in_flight_are_recorded_and_waits_count_from_then(store: Store) -> None:  # noqa: F811
    await _run(store)
    item = await _lease(store, T0)
    await store.write(lambda c: waits.app_interrupted_txn(c, item, URL, "refused", T0, 10_000))
    await _lease(store, T0 + 500)                            # in flight when the engine is killed
    later = T0 + 3_600_000                                   # an hour of engine downtime
    assert await store.write(lambda c: waits.resume_txn(c, later)) == 1
    assert await store.requeue_leases(None) == 1
    assert await store.read(_queue) == [(T0 + 500, None, 0)]            # due at once, same attempt
    assert (later, "attempt_interrupted", 0) in await store.read(_history)
    run = await store.read(lambda c: queries.get_run(c, "01RUN"))
    assert run is not None and run["waiting_for_app"]["since"] == later
    item = await _lease(store, later + 1)
    assert not await store.write(lambda c: waits.app_interrupted_txn(c, item, URL, "refused", later + 1, 10_000))


async def test_a_call_cut_at_shutdown_is_due_at_once_with_the_same_attempt(store: Store) -> None:  # noqa: F811
    await _run(store)
    item = await _lease(store, T0)
    await store.write(lambda c: waits.engine_interrupted_txn(c, item, "the engine is shutting down", T0 + 7))
    assert await store.read(_queue) == [(T0 + 7, None, 0)]
    assert await store.read(_history) == [(T0 + 7, "attempt_interrupted", 0)]
    # Already answered and acked (the row is gone): nothing is recorded.
    await store.write(lambda c: c.execute("DELETE FROM queue"))
    await store.write(lambda c: waits.engine_interrupted_txn(c, item, "the engine is shutting down", T0 + 9))
    assert len(await store.read(_history)) == 1
