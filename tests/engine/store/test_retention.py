"""Retention against real stores (memory and WAL file): what a pass removes, what it must keep, space freed.

"Old" runs are written through the store's own transactions with old
timestamps (``create_runs_txn`` / ``finish_run_txn`` take ``now``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcmd.engine.retention import Pruner, format_retention, parse_age, parse_retention
from agentcmd.engine.store import Store, apps, events, now_ms, open_store, queries, queue, runs
from agentcmd.engine.store.models import (
    MemoWrite,
    NewEvent,
    NewItem,
    NewPause,
    QueueKind,
    RunSpec,
    RunStatus,
)
from agentcmd.engine.store.retention import storage_stats
from agentcmd.errors import ConfigError

DAY = 86_400_000
FN_CONFIG = '{"id": "app-fn", "steps": {"step": {"runtime": {"url": "http://x/api?fnId=app-fn&stepId=step"}}}}'


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(None if request.param == "memory" else tmp_path / "engine.db")
    s.db.write_sync(lambda c: apps.upsert_app_txn(
        c, "app", "http://x/api", "py", "fast_api", "c1",
        [("app-fn", "uuid-1", "fn", "http://x/api?fnId=app-fn&stepId=step", FN_CONFIG)], now_ms()))
    yield s
    s.close()


def _event(conn: sqlite3.Connection, event_id: str, at: int, user_id: str | None = None) -> None:
    events.insert_events_txn(conn, [NewEvent(event_id, "app/go", {"name": "app/go", "data": {"pad": "x" * 2000}},
                                             user_id, at)], at, dispatch=False)


def _run(conn: sqlite3.Connection, run_id: str, at: int, *, event_id: str | None = None, steps: int = 3,
         finish: RunStatus | None = RunStatus.COMPLETED, parent: str | None = None,
         idem_key: str | None = None) -> None:
    """A run created at ``at`` (its event too), ``steps`` memos, finished a minute later unless ``finish`` is None."""
    event_id = event_id or f"E-{run_id}"
    if conn.execute("SELECT 1 FROM events WHERE internal_id=?", (event_id,)).fetchone() is None:
        _event(conn, event_id, at)
    runs.create_runs_txn(conn, [RunSpec(run_id, "app-fn", "app", [{"name": "app/go", "data": {}, "id": event_id}],
                                        event_id, 3, parent=parent, idem_key=idem_key)], at, None)
    for i in range(steps):
        runs.save_step_txn(conn, run_id, MemoWrite(f"s{i}", f"step {i}", "StepRun", {"data": "y" * 3000}), at)
        runs.history_txn(conn, run_id, at, "step_completed", f"s{i}", 0, None)
    if finish is not None:
        runs.finish_run_txn(conn, run_id, finish, '"ok"', None, now=at + 60_000)


def _dispatched(conn: sqlite3.Connection) -> None:
    """The worker has dispatched every event queued so far (the runs' function.finished events)."""
    for (item_id,) in conn.execute("SELECT id FROM queue WHERE kind='event'").fetchall():
        queue.ack_txn(conn, item_id)


def _ids(store: Store) -> set[str]:
    return {r[0] for r in store.db.conn.execute("SELECT run_id FROM runs").fetchall()}


def _count(store: Store, sql: str, *args: object) -> int:
    return int(store.db.conn.execute(sql, args).fetchone()[0])


async def test_old_finished_runs_go_with_their_rows_and_everything_else_stays(store: Store) -> None:
    now = now_ms()
    old = now - 40 * DAY

    def setup(conn: sqlite3.Connection) -> None:
        _run(conn, "R-OLD-DONE", old)
        _run(conn, "R-OLD-FAILED", old, finish=RunStatus.FAILED)
        _run(conn, "R-OLD-CANCELLED", old, finish=RunStatus.CANCELLED)
        _run(conn, "R-NEW-DONE", now - DAY)
        # Started long ago and still going: a wait_for_event across the cut-off, a sleep, a parked call.
        _run(conn, "R-OLD-WAITING", old, finish=None)
        runs.insert_pause_txn(conn, "R-OLD-WAITING", NewPause("wait", "w1", "app/approved", None, None,
                                                              now + 365 * DAY, {"after_event": "E"}))
        _run(conn, "R-OLD-SLEEPING", old, finish=None)
        queue.enqueue_txn(conn, "R-OLD-SLEEPING", NewItem(QueueKind.SLEEP, "nap", now + 90 * DAY))
        _run(conn, "R-OLD-PARKED", old, finish=None)
        item = queue.enqueue_txn(conn, "R-OLD-PARKED", NewItem(QueueKind.STEP, "s9", old), now + 60_000)
        assert item is not None
        from agentcmd.engine.store import flow

        flow.park_txn(conn, item.id, "paused:app-fn", 1, 0, old, now + DAY)
        # An old event that started no run, with a skip row; an old event still queued for dispatch.
        _event(conn, "E-LONELY", old)
        flow.record_skip_txn(conn, "app-fn", "E-LONELY", "paused", old)
        _dispatched(conn)
        _event(conn, "E-QUEUED", old)
        queue.enqueue_txn(conn, None, NewItem(QueueKind.EVENT, None, now, {"event_id": "E-QUEUED"}))

    await store.write(setup)
    finished_events_before = _count(store, "SELECT COUNT(*) FROM events WHERE name LIKE 'inngest/%'")
    assert finished_events_before > 0

    report = await Pruner(store, now_ms, None, pause_s=0, duty=0).prune(30 * 86400)

    assert _ids(store) == {"R-NEW-DONE", "R-OLD-WAITING", "R-OLD-SLEEPING", "R-OLD-PARKED"}
    assert report.counts.runs == 3
    assert report.counts.steps == 9 and report.counts.history >= 9
    for table in ("steps", "history"):
        left = _count(store, f"SELECT COUNT(*) FROM {table} WHERE run_id LIKE 'R-OLD-%' AND run_id NOT IN "
                             "('R-OLD-WAITING', 'R-OLD-SLEEPING', 'R-OLD-PARKED')")
        assert left == 0, table
    assert _count(store, "SELECT COUNT(*) FROM steps WHERE run_id='R-OLD-WAITING'") == 3
    assert _count(store, "SELECT COUNT(*) FROM pauses WHERE run_id='R-OLD-WAITING'") == 1
    assert _count(store, "SELECT COUNT(*) FROM queue WHERE run_id='R-OLD-SLEEPING' AND kind='sleep'") == 1
    assert _count(store, "SELECT COUNT(*) FROM flow_waiting") == 1
    kept_events = {r[0] for r in store.db.conn.execute("SELECT internal_id FROM events")}
    # The events of kept runs and the queued one stay; the pruned runs' events, the lonely one and the
    # old runs' function.finished/failed/cancelled events go, and the lonely event's skip row with it.
    assert {"E-R-NEW-DONE", "E-R-OLD-WAITING", "E-R-OLD-SLEEPING", "E-R-OLD-PARKED", "E-QUEUED"} <= kept_events
    assert not {"E-R-OLD-DONE", "E-R-OLD-FAILED", "E-R-OLD-CANCELLED", "E-LONELY"} & kept_events
    assert _count(store, "SELECT COUNT(*) FROM events WHERE name LIKE 'inngest/%' AND received_at < ?",
                  now - 30 * DAY) == 0
    assert _count(store, "SELECT COUNT(*) FROM flow_skips") == 0
    run = await store.read(lambda c: queries.get_run(c, "R-OLD-WAITING"))
    assert run is not None and run["status"] == RunStatus.QUEUED


async def test_an_event_that_a_kept_run_needs_stays(store: Store) -> None:
    now = now_ms()
    old = now - 40 * DAY

    def setup(conn: sqlite3.Connection) -> None:
        _run(conn, "R-A", old, event_id="E-SHARED")          # old and finished: goes
        _run(conn, "R-B", old, event_id="E-SHARED", finish=None)   # same event, still running: keeps it

    await store.write(setup)
    await Pruner(store, now_ms, None, pause_s=0, duty=0).prune(30 * 86400)
    assert _ids(store) == {"R-B"}
    assert _count(store, "SELECT COUNT(*) FROM events WHERE internal_id='E-SHARED'") == 1


async def test_invoked_runs_of_a_running_parent_and_replayed_originals_stay(store: Store) -> None:
    now = now_ms()
    old = now - 40 * DAY

    def setup(conn: sqlite3.Connection) -> None:
        _run(conn, "R-PARENT", old, finish=None)
        _run(conn, "R-CHILD", old, parent="R-PARENT.invoke-step")         # parent still running: kept
        _run(conn, "R-DONE-PARENT", old)
        _run(conn, "R-ORPHAN", old, parent="R-DONE-PARENT.invoke-step")   # parent finished too: goes
        _run(conn, "R-ORIGINAL", old)
        _run(conn, "R-REPLAY", now - DAY)
        runs.set_replay_of_txn(conn, [("R-REPLAY", "R-ORIGINAL")])
        _run(conn, "R-ORIGINAL2", old)
        _run(conn, "R-OLD-REPLAY", old + DAY)                              # both old: both go
        runs.set_replay_of_txn(conn, [("R-OLD-REPLAY", "R-ORIGINAL2")])

    await store.write(setup)
    await Pruner(store, now_ms, None, pause_s=0, duty=0).prune(30 * 86400)
    assert _ids(store) == {"R-PARENT", "R-CHILD", "R-ORIGINAL", "R-REPLAY"}


async def test_idempotency_keys_and_sender_ids_outlive_a_short_retention(store: Store) -> None:
    now = now_ms()
    two_hours_ago = now - 2 * 3600_000

    def setup(conn: sqlite3.Connection) -> None:
        _run(conn, "R-IDEM", two_hours_ago, idem_key="app-fn:k1")
        _run(conn, "R-PLAIN", two_hours_ago)
        _event(conn, "E-SENDER", two_hours_ago, user_id="sender-1")

    await store.write(setup)
    await Pruner(store, now_ms, None, pause_s=0, duty=0).prune(3600)
    assert _ids(store) == {"R-IDEM"}
    assert _count(store, "SELECT COUNT(*) FROM events WHERE internal_id='E-SENDER'") == 1


async def test_a_dry_run_counts_exactly_what_a_real_run_removes_and_removes_nothing(store: Store) -> None:
    now = now_ms()
    old = now - 40 * DAY

    def setup(conn: sqlite3.Connection) -> None:
        for i in range(30):
            _run(conn, f"R-{i:03}", old + i)
        _run(conn, "R-KEEP", now)
        _dispatched(conn)

    await store.write(setup)
    rows_before = _count(store, "SELECT COUNT(*) FROM runs") + _count(store, "SELECT COUNT(*) FROM events")
    pruner = Pruner(store, now_ms, None, pause_s=0, duty=0)
    dry = await pruner.prune(30 * 86400, dry_run=True)
    assert _count(store, "SELECT COUNT(*) FROM runs") + _count(store, "SELECT COUNT(*) FROM events") == rows_before
    assert pruner.last is None
    real = await pruner.prune(30 * 86400)
    assert dry.counts.as_dict() == real.counts.as_dict()
    assert real.counts.runs == 30 and real.counts.events == 60     # each run's event and its function.finished
    assert pruner.last is real


async def test_small_batches_and_space_given_back(tmp_path: Path) -> None:
    store = open_store(tmp_path / "engine.db")
    try:
        await store.write(lambda c: apps.upsert_app_txn(
            c, "app", "http://x/api", "py", "fast_api", "c1",
            [("app-fn", "uuid-1", "fn", "http://x/api?fnId=app-fn&stepId=step", FN_CONFIG)], now_ms()))
        old = now_ms() - 40 * DAY

        def setup(conn: sqlite3.Connection) -> None:
            for i in range(400):
                _run(conn, f"R-{i:04}", old + i, steps=4)
            _dispatched(conn)

        await store.write(setup)
        before = await store.read(lambda c: storage_stats(c, store.db.path))
        assert before.auto_vacuum == "incremental"      # a new file is created ready to give pages back
        report = await Pruner(store, now_ms, None, pause_s=0, duty=0).prune(30 * 86400)
        after = await store.read(lambda c: storage_stats(c, store.db.path))
        assert report.counts.runs == 400 and after.runs == 0
        assert report.batches > 2                          # not one big transaction
        assert report.pages_freed > 0
        assert after.size_bytes < before.size_bytes / 2, (before, after)
        assert report.bytes_freed == before.size_bytes - after.size_bytes
    finally:
        store.close()


def test_the_retention_setting_parses_durations_and_forever() -> None:
    assert parse_retention(None) == 30 * 86400
    assert parse_retention("30d") == 30 * 86400
    assert parse_retention("12h") == 12 * 3600
    assert parse_retention("90m") == 90 * 60
    assert parse_retention("2w") == 14 * 86400
    assert parse_retention("3600") == 3600
    assert parse_retention(7200) == 7200
    for forever in ("0", "forever", "FOREVER", "never", 0):
        assert parse_retention(forever) is None
    for bad in ("30 days", "-1d", "soon", "1y", True, -5):
        with pytest.raises(ConfigError, match="run retention"):
            parse_retention(bad)
    with pytest.raises(ConfigError, match="above 0"):
        parse_age("forever", "--older-than")
    assert [format_retention(s) for s in (30 * 86400, 12 * 3600, 90 * 60, 45, None)] == [
        "30d", "12h", "90m", "45s", "forever"]


async def test_the_background_loop_prunes_by_the_setting_and_forever_never_does(store: Store) -> None:
    import asyncio

    now = now_ms()

    async def setup() -> None:
        def txn(conn: sqlite3.Connection) -> None:
            _run(conn, "R-OLD", now - 40 * DAY)
            _run(conn, "R-NEW", now - DAY)
            _dispatched(conn)

        await store.write(txn)

    await setup()
    stop = asyncio.Event()
    forever = Pruner(store, now_ms, None, interval_s=0.01)
    await asyncio.wait_for(forever.run(stop, first_s=0), 5)      # returns at once: nothing to do, ever
    assert _ids(store) == {"R-OLD", "R-NEW"} and forever.last is None

    pruner = Pruner(store, now_ms, 30 * 86400, interval_s=0.01, pause_s=0, duty=0)
    task = asyncio.create_task(pruner.run(stop, first_s=0))
    deadline = asyncio.get_running_loop().time() + 10
    while pruner.last is None:
        assert asyncio.get_running_loop().time() < deadline, "no background pass within 10 s"
        await asyncio.sleep(0.01)
    assert _ids(store) == {"R-NEW"}
    assert pruner.last.counts.runs == 1
    stop.set()
    await asyncio.wait_for(task, 5)


def test_the_setting_comes_from_the_environment_or_the_config_file(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    from agentcmd.config import load_settings

    monkeypatch.setenv("AGENTCMD_HOME", str(tmp_path))
    monkeypatch.delenv("AGENTCMD_ENGINE_RETENTION", raising=False)
    assert load_settings().engine_retention == "30d"
    (tmp_path / "config.json").write_text('{"engine_retention": 0}')
    (tmp_path / "config.json").chmod(0o600)
    assert load_settings().engine_retention == "forever"
    monkeypatch.setenv("AGENTCMD_ENGINE_RETENTION", "168h")
    assert load_settings().engine_retention == "7d"
    assert parse_retention(load_settings().engine_retention) == 7 * 86400
    monkeypatch.setenv("AGENTCMD_ENGINE_RETENTION", "a while")
    with pytest.raises(ConfigError, match="AGENTCMD_ENGINE_RETENTION"):
        load_settings()
