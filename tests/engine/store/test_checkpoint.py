"""WAL checkpoints run on their own thread, never inside the engine's commits."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from agentcmd.engine.store import checkpoint, open_store, queue
from agentcmd.engine.store.checkpoint import Checkpointer
from agentcmd.engine.store.models import NewItem, QueueKind


def _wal_pages(path: Path) -> int:
    size = path.with_name(path.name + "-wal").stat().st_size
    return size // 4096


async def test_the_engine_connection_never_checkpoints_and_the_thread_does(tmp_path: Path) -> None:
    store = open_store(tmp_path / "engine.db")
    try:
        conn = store.db.conn
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for i in range(50):
            await store.write(lambda c, i=i: queue.enqueue_txn(c, None, NewItem(QueueKind.EVENT, None, i, {"n": i})))
        checkpointer = store.db._checkpointer
        assert checkpointer is not None
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpointer.checkpoints > 0
        probe = sqlite3.connect(tmp_path / "engine.db")
        assert probe.execute("SELECT COUNT(*) FROM queue").fetchone()[0] == 50
        probe.close()
    finally:
        store.close()
    assert not (tmp_path / "engine.db-wal").exists() or _wal_pages(tmp_path / "engine.db") == 0


def test_a_checkpointer_that_cannot_write_logs_once_and_recovers(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "x.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    cp = Checkpointer(path)
    broken = sqlite3.connect(":memory:")
    broken.close()                    # a closed connection raises sqlite3.ProgrammingError (an sqlite3.Error)
    with caplog.at_level(logging.INFO, logger="agentcmd.engine.store"):
        cp.checkpoint(broken)
        cp.checkpoint(broken)
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        conn = sqlite3.connect(path, isolation_level=None)
        cp.checkpoint(conn)
    assert cp.checkpoints == 1
    assert "work again" in caplog.records[-1].getMessage()
    conn.close()
    db.close()



@pytest.mark.parametrize("restart_pages", [200, 10**9])
async def test_under_load_that_never_pauses_the_wal_starts_over_instead_of_growing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart_pages: int) -> None:
    monkeypatch.setattr(checkpoint, "DEFAULT_INTERVAL_S", 0.05)
    monkeypatch.setattr(checkpoint, "RESTART_PAGES", restart_pages)
    store = open_store(tmp_path / "engine.db")
    commits = 0

    async def writer(n: int) -> None:     # 32 writers, as 32 runs in flight: some commit is always due
        nonlocal commits
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            row = NewItem(QueueKind.EVENT, None, n, {"p": "x" * 3000})
            await store.write(lambda c, row=row: queue.enqueue_txn(c, None, row))
            commits += 1

    try:
        await asyncio.gather(*(writer(n) for n in range(32)))
        pages = _wal_pages(tmp_path / "engine.db")
        cp = store.db._checkpointer
        assert cp is not None and cp.checkpoints > 5 and commits > 1000
        if restart_pages == 200:
            # Rewound whenever it passed 200 pages: it holds what an interval of commits writes, not all of them.
            assert cp.restarts > 0 and pages < commits / 2, (pages, commits, cp.restarts)
        else:
            assert cp.restarts == 0 and pages > commits, "without restarts the WAL keeps every commit's frames"
    finally:
        store.close()
