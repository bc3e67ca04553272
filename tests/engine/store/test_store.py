"""The store contract, run against both modes (memory and WAL file)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcmd.engine.store import Store, apps, events, now_ms, open_store, queries, queue, runs
from agentcmd.engine.store.migrations import latest_version
from agentcmd.engine.store.models import (
    DISCOVERY,
    MemoWrite,
    NewEvent,
    NewItem,
    Outcome,
    QueueKind,
    RunSpec,
    RunStatus,
)
from agentcmd.engine.store.runs import MemoConflictError
from agentcmd.errors import DatabaseCorruptError, DatabaseLockedError, DatabaseVersionError


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(None if request.param == "memory" else tmp_path / "engine.db")
    yield s
    s.close()


FN_CONFIG = '{"id": "app-fn", "steps": {"step": {"runtime": {"url": "http://x/api?fnId=app-fn&stepId=step"}}}}'


async def _run(store: Store, run_id: str = "01RUN") -> None:
    def setup(conn: sqlite3.Connection) -> None:
        apps.upsert_app_txn(conn, "app", "http://x/api", "py", "fast_api", "c1",
                            [("app-fn", "uuid-1", "fn", "http://x/api?fnId=app-fn&stepId=step", FN_CONFIG)], now_ms())

    await store.write(setup)
    await store.create_runs([RunSpec(run_id, "app-fn", "app", [{"name": "e", "data": {}, "id": "E", "ts": 1}], "E", 5)],
                            None)


async def test_a_new_run_has_a_queued_start_item(store: Store) -> None:
    await _run(store)
    items = await store.lease_due(now_ms(), 10, now_ms() + 60_000)
    assert [(i.kind, i.run_id, i.step_id, i.attempt) for i in items] == [(QueueKind.START, "01RUN", DISCOVERY, 0)]
    run = await store.read(lambda c: queries.get_run(c, "01RUN"))
    assert run is not None and run["status"] == RunStatus.QUEUED


async def test_leased_items_are_not_leased_twice_until_requeued(store: Store) -> None:
    await _run(store)
    now = now_ms()
    assert len(await store.lease_due(now, 10, now + 60_000)) == 1
    assert await store.lease_due(now, 10, now + 60_000) == []
    assert await store.requeue_leases(now) == 0          # lease not expired yet
    assert await store.requeue_leases(None) == 1          # startup: every lease is stale
    assert len(await store.lease_due(now, 10, now + 60_000)) == 1


async def test_future_items_wait_for_ready_at(store: Store) -> None:
    await _run(store)
    now = now_ms()
    [item] = await store.lease_due(now, 10, now + 60_000)
    outcome = Outcome(waiting=["s1"], items=[NewItem(QueueKind.SLEEP, "s1", now + 5_000, {"name": "nap"})])
    assert await store.apply_outcome("01RUN", item, outcome, now + 60_000) == []
    assert await store.lease_due(now, 10, now + 60_000) == []
    assert await store.next_ready_at() == now + 5_000
    assert [i.kind for i in await store.lease_due(now + 5_000, 10, now + 60_000)] == [QueueKind.SLEEP]


async def _flood(store: Store, count: int, at: int) -> None:
    """``count`` accepted events waiting for dispatch, all due at ``at``."""
    await store.write(lambda c: [queue.enqueue_txn(c, None, NewItem(QueueKind.EVENT, None, at, {"event_id": f"E{i}"}))
                                for i in range(count)])


async def test_a_due_wake_up_is_leased_before_an_older_backlog_of_events(store: Store) -> None:
    await _run(store)
    now = now_ms()
    [item] = await store.lease_due(now, 10, now + 60_000)
    await store.apply_outcome("01RUN", item, Outcome(waiting=["s1"], items=[
        NewItem(QueueKind.SLEEP, "s1", now + 5_000, {"name": "nap"})]), now + 60_000)
    await _flood(store, 200, now)               # accepted before the sleep was due
    one = await store.lease_due(now + 5_000, 1, now + 60_000)
    assert [i.kind for i in one] == [QueueKind.SLEEP]


async def test_new_events_keep_an_eighth_of_each_lease_while_runs_are_busy(store: Store) -> None:
    now = now_ms()
    await _flood(store, 50, now - 1_000)
    await store.write(lambda c: [queue.enqueue_txn(c, f"R{i}", NewItem(QueueKind.STEP, DISCOVERY, now, {}))
                                for i in range(50)])
    items = await store.lease_due(now, 16, now + 60_000)
    assert [i.kind for i in items] == [QueueKind.STEP] * 14 + [QueueKind.EVENT] * 2
    assert [i.payload["event_id"] for i in items[14:]] == ["E0", "E1"]     # oldest events first


async def test_events_fill_what_the_runs_lane_leaves(store: Store) -> None:
    now = now_ms()
    await _flood(store, 20, now)
    await store.write(lambda c: queue.enqueue_txn(c, "R", NewItem(QueueKind.STEP, DISCOVERY, now, {})))
    items = await store.lease_due(now, 8, now + 60_000)
    assert [i.kind for i in items] == [QueueKind.STEP] + [QueueKind.EVENT] * 7
    assert len(await store.lease_due(now, 100, now + 60_000)) == 13


async def test_memo_next_item_and_ack_commit_together(store: Store) -> None:
    await _run(store)
    now = now_ms()
    [item] = await store.lease_due(now, 10, now + 60_000)
    outcome = Outcome(memos=[MemoWrite("h1", "s1", "StepRun", {"data": 1})])
    [nxt] = await store.apply_outcome("01RUN", item, outcome, now + 60_000)
    assert nxt.item.kind == QueueKind.STEP and nxt.item.step_id == DISCOVERY
    assert nxt.steps == {"h1": '{"data":1}'}
    assert await store.read(lambda c: c.execute("SELECT COUNT(*) FROM queue").fetchone()[0]) == 1
    run = await store.read(lambda c: queries.get_run(c, "01RUN"))
    assert run is not None and run["status"] == RunStatus.RUNNING


async def test_memo_is_stored_exactly_once(store: Store) -> None:
    await _run(store)
    now = now_ms()
    assert await store.write(lambda c: runs.save_step_txn(c, "01RUN", MemoWrite("h1", "s1", "StepRun", {"data": 1}),
                                                           now)) is True
    assert await store.write(lambda c: runs.save_step_txn(c, "01RUN", MemoWrite("h1", "s1", "StepRun", {"data": 1}),
                                                           now)) is False
    with pytest.raises(MemoConflictError, match=r"01RUN.*h1"):
        await store.write(lambda c: runs.save_step_txn(c, "01RUN", MemoWrite("h1", "s1", "StepRun", {"data": 2}),
                                                        now))
    assert await store.read(lambda c: queries.run_memos(c, "01RUN")) == {"h1": {"data": 1}}


async def test_a_failing_write_does_not_undo_the_others_in_its_batch(store: Store) -> None:
    await _run(store)

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO history (run_id, at, type) VALUES ('01RUN', 1, 'kept?')")
        raise RuntimeError("boom")

    def good(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO history (run_id, at, type) VALUES ('01RUN', 1, 'kept')")

    results = await asyncio.gather(store.write(bad), store.write(good), return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1] is None
    types = await store.read(lambda c: [r[0] for r in c.execute("SELECT type FROM history WHERE at=1")])
    assert types == ["kept"]


async def test_concurrent_writes_share_commits(store: Store) -> None:
    events = [[NewEvent(f"01EV{i:04d}", "e", {"name": "e", "data": {}, "id": f"01EV{i:04d}", "ts": 1}, None, 1)]
              for i in range(200)]
    before = store.db.commits
    await asyncio.gather(*(store.insert_events(e) for e in events))
    assert store.db.commits - before < 200
    assert len(await store.read(lambda c: queries.api_events(c, "e", 51))) == 51


async def test_finishing_a_run_drops_its_work_and_emits_events(store: Store) -> None:
    await _run(store)
    assert await store.cancel_run("01RUN", "test") is True
    assert await store.cancel_run("01RUN", "test") is False
    assert await store.cancel_run("nope", "test") is None
    names = await store.read(lambda c: [e["name"] for e in queries.api_events(c, None, 51)])
    assert sorted(names) == ["inngest/function.cancelled", "inngest/function.finished"]
    kinds = await store.read(lambda c: [r[0] for r in c.execute("SELECT kind FROM queue")])
    assert kinds == ["event", "event"]          # only the dispatch of the two events remains


async def test_event_with_a_sender_id_is_stored_once_a_day(store: Store) -> None:
    ev = NewEvent("01A", "e", {"name": "e", "data": {}, "id": "mine", "ts": 1}, "mine", 1)
    again = NewEvent("01B", "e", {"name": "e", "data": {}, "id": "mine", "ts": 1}, "mine", 1)
    assert await store.insert_events([ev]) == ["01A"]
    assert await store.insert_events([again]) == ["01A"]


def test_file_store_keeps_state_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    s = open_store(path)
    s.db.write_sync(lambda c: events.insert_events_txn(c, [NewEvent("01A", "e", {"name": "e"}, None, 1)], 1))
    s.close()
    s = open_store(path)
    try:
        assert s.db.read_sync(lambda c: queries.event_body(c, "01A")) == {"name": "e"}
    finally:
        s.close()


def test_memory_store_starts_empty_every_time() -> None:
    s = open_store(None)
    s.db.write_sync(lambda c: events.insert_events_txn(c, [NewEvent("01A", "e", {"name": "e"}, None, 1)], 1))
    s.close()
    s = open_store(None)
    try:
        assert s.db.read_sync(lambda c: queries.event_body(c, "01A")) is None
    finally:
        s.close()


def test_newer_schema_version_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (latest_version() + 1,))
    with pytest.raises(DatabaseVersionError) as err:
        open_store(path)
    assert str(path) in err.value.what and "upgrade" in (err.value.fix or "")


def test_corrupt_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    path.write_bytes(b"this is not a sqlite database, just some text " * 100)
    with pytest.raises(DatabaseCorruptError) as err:
        open_store(path)
    assert str(path) in err.value.what and "move" in (err.value.fix or "")


def test_second_engine_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    first = open_store(path)
    try:
        with pytest.raises(DatabaseLockedError) as err:
            open_store(path)
        assert str(path) in err.value.what
    finally:
        first.close()
    open_store(path).close()   # free again once the first closed


def test_sync_helpers_warn_inside_a_running_loop() -> None:
    s = open_store(None)

    async def main() -> None:
        with pytest.warns(RuntimeWarning, match="blocks the event loop"):
            s.db.read_sync(lambda c: 1)

    try:
        asyncio.run(main())
    finally:
        s.close()


async def test_events_dispatched_in_their_own_commit_stay_stored_when_that_dispatch_fails(store: Store) -> None:
    def broken_dispatch(conn: sqlite3.Connection, rows: list[Any]) -> Any:
        runs.create_runs_txn(conn, [RunSpec("01HALF", "app-fn", "app", [], "E", 1)], now_ms(), None)
        raise RuntimeError("a trigger expression blew up")

    await _run(store, "01OTHER")           # the app and function exist
    events_in = [NewEvent("01EVA", "t/a", {"name": "t/a", "data": {}}, None, now_ms()),
                 NewEvent("01EVB", "t/b", {"name": "t/b", "data": {}}, None, now_ms())]
    ids, rows, calls = await store.accept_events(events_in, now_ms() + 60_000, broken_dispatch)
    assert ids == ["01EVA", "01EVB"] and calls == []
    assert sorted(r.payload["event_id"] for r in rows) == ids, "both rows go to the worker, leased"
    assert await store.read(lambda c: queries.get_run(c, "01HALF")) is None, "the failed dispatch left nothing"
    stored = await store.read(lambda c: c.execute("SELECT internal_id FROM events ORDER BY 1").fetchall())
    assert [r[0] for r in stored] == ids


async def test_accepted_events_are_not_dispatched_when_storing_them_failed(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import agentcmd.engine.store as store_module

    dispatched: list[Any] = []

    def half_then_broken(conn: sqlite3.Connection, evs: Any, now: int, leased: list[Any], lease_until: int) -> Any:
        events.insert_events_txn(conn, evs[:1], now, leased=leased, lease_until=lease_until)
        raise sqlite3.IntegrityError("a constraint failed on the second event")

    monkeypatch.setattr(store_module, "insert_events_txn", half_then_broken)
    events_in = [NewEvent("01EVC", "t/c", {"name": "t/c", "data": {}}, None, now_ms()),
                 NewEvent("01EVD", "t/d", {"name": "t/d", "data": {}}, None, now_ms())]
    with pytest.raises(sqlite3.IntegrityError):
        await store.accept_events(events_in, now_ms() + 60_000, lambda c, rows: dispatched.append(rows) or ([], []))
    assert dispatched == [], "the dispatch job saw rows its savepoint-undone sibling had listed"
    assert await store.read(lambda c: c.execute("SELECT COUNT(*) FROM events").fetchone()[0]) == 0
