"""A database that cannot be written (disk full, read-only) fails writes clearly and recovers.

SQLite's own limits produce the real error codes: ``max_page_count`` gives
SQLITE_FULL ("database or disk is full"), ``query_only`` and a read-only
open give SQLITE_READONLY.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcmd.engine.store import Store, open_store, queue
from agentcmd.engine.store.models import NewItem, QueueKind
from agentcmd.engine.store.sqlite import translate_error
from agentcmd.errors import DatabaseUnwritableError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "engine.db")
    yield s
    s.close()


def _item(n: int) -> NewItem:
    return NewItem(QueueKind.EVENT, None, n, {"pad": "x" * 3000, "n": n})


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0])


async def test_a_full_disk_fails_every_write_of_the_turn_then_writes_resume(store: Store) -> None:
    await store.write(lambda c: queue.enqueue_txn(c, None, _item(0)))
    conn = store.db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")          # no room for one more page
    # Two writes in one loop turn share a transaction: both fail with the disk's error.
    results = await asyncio.gather(*(store.write(lambda c, n=n: [queue.enqueue_txn(c, None, _item(n))
                                                                 for _ in range(5)]) for n in (1, 2)),
                                  return_exceptions=True)
    for err in results:
        assert isinstance(err, DatabaseUnwritableError), err
        assert "cannot be written: the disk is full" in err.what and str(store.db.path) in err.what
        assert "503" in (err.fix or "") and "resumes by itself" in (err.fix or "")
    assert store.db.write_error is not None
    assert await store.read(_count) == 1                       # what was there is still there
    conn.execute("PRAGMA max_page_count = 1073741823")         # space returns
    await store.write(lambda c: queue.enqueue_txn(c, None, _item(3)))
    assert store.db.write_error is None
    assert await store.read(_count) == 2


async def test_a_read_only_database_says_so(store: Store) -> None:
    store.db.conn.execute("PRAGMA query_only = ON")
    with pytest.raises(DatabaseUnwritableError, match="read-only"):
        await store.write(lambda c: queue.enqueue_txn(c, None, _item(1)))
    store.db.conn.execute("PRAGMA query_only = OFF")
    await store.write(lambda c: queue.enqueue_txn(c, None, _item(1)))
    assert store.db.write_error is None


def test_a_file_opened_read_only_maps_to_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.Error) as caught:
        ro.execute("INSERT INTO t VALUES (1)")
    err = translate_error(caught.value, str(path))
    assert isinstance(err, DatabaseUnwritableError) and "read-only" in err.what and str(path) in err.what
    ro.close()


def test_other_errors_are_not_mistaken_for_a_disk_outage(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute("SELECT * FROM nowhere")
    assert not isinstance(translate_error(caught.value, "x"), DatabaseUnwritableError)
