"""WAL checkpoints run on their own thread, never inside the engine's commits."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from agentcmd.engine.store import open_store, queue
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
