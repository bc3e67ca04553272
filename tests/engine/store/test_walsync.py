"""WalSync: a write's await returns only after an fsync of the WAL; failures and shutdown lose nobody.

A real database file; the fsync is wrapped to be slow, to fail (EIO), or
counted.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcmd.engine.store import Store, open_store, queue
from agentcmd.engine.store.models import NewItem, QueueKind
from agentcmd.errors import DatabaseUnwritableError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "engine.db")
    yield s
    s.close()


def _enqueue(n: int) -> Callable[[sqlite3.Connection], Any]:
    return lambda c: queue.enqueue_txn(c, None, NewItem(QueueKind.EVENT, None, n, {"n": n}))


def _count(store: Store) -> int:
    return int(store.db.conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0])


def _gate_fsyncs(store: Store) -> tuple[threading.Event, list[int]]:
    """Hold every fsync until the gate is set; ``calls`` gets the queue's committed row count as each starts."""
    sync = store.db.wal_sync
    assert sync is not None
    gate = threading.Event()
    calls: list[int] = []
    original = sync.fsync

    def gated() -> None:
        calls.append(_count_rows(store))
        gate.wait(10)
        original()

    sync.fsync = gated  # type: ignore[method-assign]
    return gate, calls


async def test_a_write_resolves_after_the_fsync_and_writes_meanwhile_share_the_next(store: Store) -> None:
    gate, calls = _gate_fsyncs(store)
    first = asyncio.ensure_future(store.write(_enqueue(1)))
    await asyncio.sleep(0.05)
    assert not first.done() and calls == [1]      # committed (visible), not yet acknowledged
    later = [asyncio.ensure_future(store.write(_enqueue(n))) for n in range(2, 12)]
    await asyncio.sleep(0.05)
    assert not any(f.done() for f in later)
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 10)
    assert calls == [1, 11]                       # ten writes of one moment, one fsync


def _count_rows(store: Store) -> int:
    conn = sqlite3.connect(f"file:{store.db.path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0])
    finally:
        conn.close()


async def test_a_failed_fsync_fails_its_writers_with_the_disk_error_then_writes_resume(store: Store) -> None:
    sync = store.db.wal_sync
    assert sync is not None
    original = sync.fsync
    failing = True

    def eio() -> None:
        if failing:
            raise OSError(errno.EIO, "Input/output error")
        original()

    sync.fsync = eio  # type: ignore[method-assign]
    with pytest.raises(DatabaseUnwritableError) as info:
        await store.write(_enqueue(1))
    assert "fsync of its WAL failed" in info.value.what and str(store.db.path) in info.value.what
    assert store.db.write_error is not None
    failing = False
    await store.write(_enqueue(2))
    assert store.db.write_error is None


async def test_a_write_that_changes_nothing_does_not_wait_for_an_fsync(store: Store) -> None:
    sync = store.db.wal_sync
    assert sync is not None
    before = sync.syncs
    assert await store.write(lambda c: c.execute("SELECT 1").fetchone()[0]) == 1
    assert sync.syncs == before


async def test_close_delivers_what_waits_for_an_fsync(tmp_path: Path) -> None:
    s = open_store(tmp_path / "engine.db")
    pending = asyncio.ensure_future(s.write(_enqueue(1)))
    await asyncio.sleep(0)                                  # queued, not flushed
    s.close()                                               # flushes, fsyncs and delivers
    await asyncio.wait_for(pending, 5)                      # resolved: no error, no hang
    again = open_store(tmp_path / "engine.db")
    try:
        assert _count(again) == 1
    finally:
        again.close()


def test_the_in_memory_database_has_no_fsync() -> None:
    s = open_store(None)
    try:
        assert s.db.wal_sync is None
    finally:
        s.close()


async def test_fsyncs_run_on_one_thread_of_their_own_which_close_ends(tmp_path: Path) -> None:
    s = open_store(tmp_path / "engine.db")
    sync = s.db.wal_sync
    assert sync is not None
    threads: list[str] = []
    original = sync.fsync

    def recording() -> None:
        threads.append(threading.current_thread().name)
        original()

    sync.fsync = recording  # type: ignore[method-assign]
    for n in range(5):
        await s.write(_enqueue(n))
    assert threads == ["agentcmd-wal-fsync"] * 5          # off the loop's thread, one thread for all
    s.close()
    assert not [t for t in threading.enumerate() if t.name == "agentcmd-wal-fsync"]


async def test_close_during_an_fsync_delivers_once_and_the_late_answer_is_ignored(tmp_path: Path) -> None:
    s = open_store(tmp_path / "engine.db")
    sync = s.db.wal_sync
    assert sync is not None
    started, gate = threading.Event(), threading.Event()
    original = sync.fsync

    def gated() -> None:
        started.set()
        gate.wait(10)
        original()

    sync.fsync = gated  # type: ignore[method-assign]
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    pending = asyncio.ensure_future(s.write(_enqueue(1)))
    assert await asyncio.to_thread(started.wait, 10)       # the fsync runs on its thread
    gate.set()
    s.close()                                              # joins the thread, syncs again, delivers
    await asyncio.wait_for(pending, 5)
    for _ in range(3):
        await asyncio.sleep(0)                             # the thread's answer reaches the loop: a no-op
    assert errors == []
    assert not sync.busy


async def test_a_write_that_changes_nothing_during_an_fsync_goes_out_with_it_not_before_nor_after_another(
        store: Store) -> None:
    gate, calls = _gate_fsyncs(store)
    first = asyncio.ensure_future(store.write(_enqueue(1)))
    while not calls:                                       # the fsync covering the first write has started
        await asyncio.sleep(0.001)
    read = asyncio.ensure_future(store.write(lambda c: _count(store)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not read.done()                                 # it may have read the first write: not before it
    gate.set()
    assert await asyncio.wait_for(read, 10) == 1
    await first
    assert calls == [1]                                    # no fsync of its own


async def test_a_write_that_changes_nothing_after_writes_waiting_for_the_next_fsync_goes_out_after_it(
        store: Store) -> None:
    gate, calls = _gate_fsyncs(store)
    first = asyncio.ensure_future(store.write(_enqueue(1)))
    while not calls:
        await asyncio.sleep(0.001)
    second = asyncio.ensure_future(store.write(_enqueue(2)))   # waits for the next fsync
    await asyncio.sleep(0)
    read = asyncio.ensure_future(store.write(lambda c: _count(store)))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(first, 10)
    assert not read.done() or second.done()                # never ahead of the write it may have read
    assert await asyncio.wait_for(read, 10) == 2
    await second
    assert calls == [1, 2]


async def test_a_write_not_asked_to_be_durable_resolves_at_its_commit_and_the_next_fsync_covers_it(
        tmp_path: Path) -> None:
    s = open_store(tmp_path / "engine.db")
    sync = s.db.wal_sync
    assert sync is not None
    synced: list[int] = []
    original = sync.fsync

    def counting() -> None:
        synced.append(_count_rows(s))
        original()

    sync.fsync = counting  # type: ignore[method-assign]
    await s.db.write(_enqueue(1), durable=False)
    assert synced == [] and not sync.busy and _count_rows(s) == 1    # committed, no fsync of its own
    both = [s.db.write(_enqueue(2), durable=False), s.db.write(_enqueue(3))]    # one commit: one is durable
    await asyncio.gather(*both)
    assert synced == [3]                                   # the durable write's fsync covers the others
    s.close()
