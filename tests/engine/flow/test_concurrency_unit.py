"""Concurrency keys, waiting-line order and the gate, against a real SQLite store with the migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID

from agentcmd.engine.flow.concurrency import (
    PARK_MS,
    ConcurrencyGate,
    Slot,
    run_created_ms,
    slots_for,
)
from agentcmd.engine.registry import Registry, parse_function
from agentcmd.engine.store import Store, apps, now_ms, open_store
from agentcmd.engine.store.flow import park_txn, recover_txn, unpark_txn
from agentcmd.engine.store.models import CallContext, QueueItem, RunSpec

EVENT = {"name": "e", "data": {"user": "u1", "n": 3}}


@pytest.mark.parametrize(("config", "expected"), [
    ({}, []),
    ({"concurrency": [{"limit": 5}]}, [Slot("fn:app-f:", 5)]),
    ({"concurrency": [{"limit": 2, "key": "event.data.user"}]}, [Slot("fn:app-f:u1", 2)]),
    ({"concurrency": [{"limit": 2, "key": "event.data.user", "scope": "env"}]}, [Slot("env:u1", 2)]),
    ({"concurrency": [{"limit": 2, "key": "'openai'", "scope": "account"}]}, [Slot("account:openai", 2)]),
    ({"concurrency": [{"limit": 1}, {"limit": 3, "key": "event.data.n", "scope": "env"}]},
     [Slot("fn:app-f:", 1), Slot("env:3", 3)]),
    # a key that does not evaluate on this event: one shared slot, not an escape from the limit
    ({"concurrency": [{"limit": 2, "key": "event.data.missing"}]}, [Slot("fn:app-f:", 2)]),
    ({"concurrency": [{"limit": 0}]}, []),
])
def test_slots_for(config: dict[str, Any], expected: list[Slot]) -> None:
    assert slots_for("app-f", config, EVENT) == expected


def test_run_created_ms_reads_the_ulid_time() -> None:
    assert run_created_ms(str(ULID.from_timestamp(1_700_000_000.123))) == 1_700_000_000_123
    assert run_created_ms("not-a-ulid!") == 0


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(None if request.param == "memory" else tmp_path / "engine.db")
    yield s
    s.close()


def _fn_config(concurrency: list[dict[str, Any]], slug: str = "app-f") -> dict[str, Any]:
    return {"id": slug, "triggers": [{"event": "e"}], "concurrency": concurrency,
            "steps": {"step": {"runtime": {"url": f"http://x/api?fnId={slug}&stepId=step"}}}}


async def _setup(store: Store, registry: Registry, configs: list[dict[str, Any]]) -> None:
    import json

    def txn(conn: sqlite3.Connection) -> None:
        apps.upsert_app_txn(conn, "app", "http://x/api", "py", "fast_api", "c",
                            [(c["id"], c["id"], c["id"], c["steps"]["step"]["runtime"]["url"], json.dumps(c))
                             for c in configs], now_ms())

    await store.write(txn)
    registry.replace([parse_function(c, "app") for c in configs])


async def _runs(store: Store, slug: str, n: int, event: dict[str, Any] | None = None) -> list[QueueItem]:
    specs = [RunSpec(str(ULID()), slug, "app", [event or EVENT], "E", 1) for _ in range(n)]
    return await store.create_runs(specs, now_ms() + 60_000)


async def _ctx(store: Store, item: QueueItem) -> CallContext:
    [ctx] = await store.load_contexts([item])
    return ctx


class Clock:
    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


async def _settle(store: Store) -> None:
    """Let scheduled work land: a few loop turns, and a file store's writes also wait for their WAL fsync."""
    deadline = time.monotonic() + 5
    for _ in range(5):
        await asyncio.sleep(0)
    while store.db.wal_sync is not None and store.db.wal_sync.busy and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_call_over_the_limit_is_parked_and_the_next_free_slot_unparks_it(store: Store) -> None:
    registry, clock, woken = Registry(), Clock(), []
    await _setup(store, registry, [_fn_config([{"limit": 1}])])
    gate = ConcurrencyGate(store, registry, clock, lambda: woken.append(1))
    first, second = await _runs(store, "app-f", 2)
    held = await gate.acquire(await _ctx(store, first))
    assert held == ["fn:app-f:"]
    assert await gate.acquire(await _ctx(store, second)) is None
    row = await store.read(lambda c: c.execute("SELECT ready_at, lease_until FROM queue WHERE id=?",
                                               (second.id,)).fetchone())
    assert row == (clock.now + PARK_MS, None)
    gate.release(held)
    await _settle(store)
    assert woken, "a freed slot wakes the worker"
    row = await store.read(lambda c: c.execute("SELECT ready_at FROM queue WHERE id=?", (second.id,)).fetchone())
    assert row[0] <= clock.now
    # the slot is reserved for the unparked call: a newcomer waits behind it
    [newcomer] = await _runs(store, "app-f", 1)
    assert await gate.acquire(await _ctx(store, newcomer)) is None
    assert await gate.acquire(await _ctx(store, second)) == ["fn:app-f:"]


async def test_a_run_continuing_in_the_same_turn_keeps_the_slot_before_waiters(store: Store) -> None:
    registry, clock = Registry(), Clock()
    await _setup(store, registry, [_fn_config([{"limit": 1}])])
    gate = ConcurrencyGate(store, registry, clock)
    running, waiting = await _runs(store, "app-f", 2)
    held = await gate.acquire(await _ctx(store, running))
    assert held is not None
    assert await gate.acquire(await _ctx(store, waiting)) is None
    gate.release(held)
    # same loop turn: the running run's next call (same context is enough here)
    assert await gate.acquire(await _ctx(store, running)) == ["fn:app-f:"]
    await _settle(store)
    parked = await store.read(lambda c: c.execute("SELECT COUNT(*) FROM flow_waiting").fetchone()[0])
    assert parked == 1


async def test_limits_per_key_value_are_independent(store: Store) -> None:
    registry, clock = Registry(), Clock()
    await _setup(store, registry, [_fn_config([{"limit": 1, "key": "event.data.user"}])])
    gate = ConcurrencyGate(store, registry, clock)
    [a1] = await _runs(store, "app-f", 1, {"name": "e", "data": {"user": "a"}})
    [a2] = await _runs(store, "app-f", 1, {"name": "e", "data": {"user": "a"}})
    [b1] = await _runs(store, "app-f", 1, {"name": "e", "data": {"user": "b"}})
    assert await gate.acquire(await _ctx(store, a1)) == ["fn:app-f:a"]
    assert await gate.acquire(await _ctx(store, b1)) == ["fn:app-f:b"]
    assert await gate.acquire(await _ctx(store, a2)) is None


async def test_env_scope_shares_a_key_across_functions(store: Store) -> None:
    registry, clock = Registry(), Clock()
    shared = [{"limit": 1, "key": "'openai'", "scope": "env"}]
    await _setup(store, registry, [_fn_config(shared, "app-f"), _fn_config(shared, "app-g")])
    gate = ConcurrencyGate(store, registry, clock)
    [f] = await _runs(store, "app-f", 1)
    [g] = await _runs(store, "app-g", 1)
    assert await gate.acquire(await _ctx(store, f)) == ["env:openai"]
    assert await gate.acquire(await _ctx(store, g)) is None


async def test_every_limit_must_have_room(store: Store) -> None:
    registry, clock = Registry(), Clock()
    await _setup(store, registry, [_fn_config([{"limit": 5}, {"limit": 1, "key": "event.data.user"}])])
    gate = ConcurrencyGate(store, registry, clock)
    u1, u1_again = await _runs(store, "app-f", 2)
    assert await gate.acquire(await _ctx(store, u1)) == ["fn:app-f:", "fn:app-f:u1"]
    assert await gate.acquire(await _ctx(store, u1_again)) is None
    assert gate.in_flight == {"fn:app-f:": 1, "fn:app-f:u1": 1}


def _park(conn: sqlite3.Connection, item_id: int, key: str, score: int, lim: int = 1) -> None:
    assert park_txn(conn, item_id, key, lim, score, 1000 + item_id, 10**15)


async def test_waiters_leave_in_score_order_and_recover_up_to_the_limit(store: Store) -> None:
    registry = Registry()
    await _setup(store, registry, [_fn_config([{"limit": 2}])])
    items = await _runs(store, "app-f", 4)
    ids = [i.id for i in items]
    scores = [40, 10, 30, 20]

    def park_all(conn: sqlite3.Connection) -> None:
        for item_id, score in zip(ids, scores, strict=True):
            _park(conn, item_id, "k", score, lim=2)

    await store.write(park_all)
    assert await store.write(lambda c: unpark_txn(c, "k", 1, 10**15)) == [ids[1]]
    assert await store.write(recover_txn) == 2          # the limit (2) of the three left
    left = await store.read(lambda c: [r[0] for r in c.execute("SELECT item_id FROM flow_waiting")])
    assert left == [ids[0]]


async def test_a_parked_row_whose_run_ends_stops_waiting(store: Store) -> None:
    registry = Registry()
    await _setup(store, registry, [_fn_config([{"limit": 1}])])
    [item] = await _runs(store, "app-f", 1)
    await store.write(lambda c: _park(c, item.id, "k", 1))
    await store.cancel_run(str(item.run_id), "test")
    assert await store.read(lambda c: c.execute("SELECT COUNT(*) FROM flow_waiting").fetchone()[0]) == 0



async def test_a_paused_function_parks_every_call_until_unpaused(store: Store) -> None:
    registry, clock = Registry(), Clock()
    await _setup(store, registry, [_fn_config([])])         # no concurrency limit at all
    gate = ConcurrencyGate(store, registry, clock)
    [item] = await _runs(store, "app-f", 1)
    assert await gate.pause("app-f", clock.now) is True
    assert await gate.pause("app-f", clock.now) is False
    assert await gate.acquire(await _ctx(store, item)) is None
    assert await store.read(lambda c: c.execute("SELECT key FROM flow_waiting").fetchall()) == [("paused:app-f",)]
    assert await store.write(recover_txn) == 0, "a restart does not resume a paused function's calls"
    assert await gate.unpause("app-f") == (True, 1)
    due = await store.read(lambda c: c.execute("SELECT ready_at FROM queue WHERE id=?", (item.id,)).fetchone())
    assert due[0] <= clock.now
    assert await gate.acquire(await _ctx(store, item)) == []
