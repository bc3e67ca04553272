"""What the engine acknowledges survives a power cut: WAL fsynced first, acknowledgement after.

Commits run with ``synchronous=NORMAL`` on the event loop (no fsync there);
``WalSync`` fsyncs the WAL on its own thread and only then are the writers'
futures resolved. So every acknowledgement, the 200 of ``POST /e`` and the
next SDK call after a step's result, must come after an fsync that started
once the acknowledged row was committed.

The engine runs in this process (uvicorn in a thread, a real SQLite file,
the real SDK app) so its fsync can be wrapped: the wrapper notes which rows
are committed when the fsync starts, holds it 0.2 s (a slow disk; the loop
keeps running meanwhile), and notes when it ends. An acknowledgement that did
not wait for the fsync arrives inside that window and the check fails; so
does one that no fsync covered (NORMAL alone).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tests.harness.engine import EVENT_KEY, SIGNING_KEY, EngineProc, client_for
from tests.polling import wait_for

from agentcmd.engine.app import Engine, EngineConfig, build_app
from agentcmd.engine.serve import bind
from agentcmd.engine.store import walsync

HOLD_S = 0.2


@dataclass
class Fsync:
    started: float
    ended: float
    events: set[str]             # event ids committed when the fsync started
    steps: set[tuple[str, str]]  # (run_id, step name) committed when it started


class InProcessEngine:
    """A production engine served by uvicorn in a thread, with its WAL fsyncs observable."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.engine = Engine(EngineConfig(mode="production", db_path=db_path, event_keys=[EVENT_KEY],
                                          signing_key=SIGNING_KEY, retry_interval_s=0.2, grace_s=1))
        self.engine.open()
        self.hold = threading.Event()          # set: every fsync takes HOLD_S longer
        self.fsyncs: list[Fsync] = []
        sync = self.engine.store.db.wal_sync
        assert sync is not None
        original = sync.fsync

        def observed_fsync() -> None:
            started = time.monotonic()
            events = {r[0] for r in self.committed("SELECT internal_id FROM events")}
            steps = {(r[0], r[1]) for r in self.committed("SELECT run_id, name FROM steps")}
            if self.hold.is_set():
                time.sleep(HOLD_S)             # on the fsync thread: the engine's loop keeps running
            original()
            self.fsyncs.append(Fsync(started, time.monotonic(), events, steps))

        sync.fsync = observed_fsync  # type: ignore[method-assign]
        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(build_app(self.engine), log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])),
                                       daemon=True)
        self.thread.start()
        self.proc = EngineProc("production", self.port, [], {}, db_path.parent / "unused")
        wait_for(lambda: httpx.get(self.proc.url + "/health", timeout=1).status_code == 200, timeout=15,
                 what="the in-process engine's /health")

    def committed(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """What another connection sees: committed rows only."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def covered_by(self, before: float, event_id: str | None = None,
                   step: tuple[str, str] | None = None) -> list[Fsync]:
        """The fsyncs that ended by ``before`` and started with the event / step already committed."""
        return [f for f in list(self.fsyncs) if f.ended <= before
                and (event_id is None or event_id in f.events) and (step is None or step in f.steps)]

    def stop(self) -> None:
        self.hold.clear()
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[InProcessEngine]:
    running = InProcessEngine(tmp_path / "db" / "engine.db")
    yield running
    running.stop()


def test_post_e_answers_200_only_after_an_fsync_covering_the_events(engine: InProcessEngine) -> None:
    engine.hold.set()
    for _ in range(3):
        sent = time.monotonic()
        r = httpx.post(f"{engine.proc.url}/e/{EVENT_KEY}", json={"name": "t/ack", "data": {}}, timeout=10)
        answered = time.monotonic()
        assert r.status_code == 200, r.text
        [event_id] = r.json()["ids"]
        assert engine.covered_by(answered, event_id=event_id), "acknowledged before the WAL was fsynced"
        assert answered - sent >= HOLD_S


def test_the_next_sdk_call_comes_only_after_an_fsync_covering_the_step_result(
        engine: InProcessEngine, sdk_factory: Callable[..., Any]) -> None:
    import inngest

    client = client_for(engine.proc, "ack-app")
    seen: dict[str, Any] = {}

    @client.create_function(fn_id="two-steps", trigger=inngest.TriggerEvent(event="t/two"), retries=0)
    async def two_steps(ctx: inngest.Context) -> str:
        async def first() -> str:
            return "one"

        async def second() -> str:
            # Runs in the SDK call the engine makes after storing first()'s result.
            seen["covering"] = engine.covered_by(time.monotonic(), step=(ctx.run_id, "first"))
            return "two"

        await ctx.step.run("first", first)
        return await ctx.step.run("second", second)

    sdk_factory(engine.proc, client, [two_steps])
    engine.hold.set()
    r = httpx.post(f"{engine.proc.url}/e/{EVENT_KEY}", json={"name": "t/two", "data": {}}, timeout=10)
    assert r.status_code == 200, r.text
    wait_for(lambda: "covering" in seen, timeout=20, what="the second step to run")
    assert seen["covering"], "the next SDK call came before the first step's result was fsynced"


def test_an_event_its_run_and_the_runs_first_call_wait_for_one_fsync_together(
        engine: InProcessEngine, sdk_factory: Callable[..., Any]) -> None:
    """The event is dispatched in the commit that stores it: one flush, then both the 200 and the first call."""
    import inngest

    client = client_for(engine.proc, "first-call-app")
    seen: dict[str, Any] = {}

    @client.create_function(fn_id="first-call", trigger=inngest.TriggerEvent(event="t/first"), retries=0)
    async def first_call(ctx: inngest.Context) -> str:
        seen.setdefault("at", time.monotonic())
        return "ok"

    sdk_factory(engine.proc, client, [first_call])
    engine.hold.set()          # each flush takes 0.2 s: the ones on the way cannot hide in a loop turn
    sent = time.monotonic()
    r = httpx.post(f"{engine.proc.url}/e/{EVENT_KEY}", json={"name": "t/first", "data": {}}, timeout=10)
    assert r.status_code == 200, r.text
    [event_id] = r.json()["ids"]
    assert engine.proc.get(f"/v1/events/{event_id}/runs").json()["data"], "the run exists when POST /e answers"
    wait_for(lambda: "at" in seen, timeout=20, what="the run's first call")
    on_the_way = [f for f in list(engine.fsyncs) if sent <= f.started and f.ended <= seen["at"]]
    assert len(on_the_way) == 1 and event_id in on_the_way[0].events, on_the_way


def test_many_writes_of_one_moment_share_one_fsync(engine: InProcessEngine) -> None:
    engine.hold.set()

    def post(i: int) -> None:
        r = httpx.post(f"{engine.proc.url}/e/{EVENT_KEY}", json={"name": "t/many", "data": {"i": i}}, timeout=10)
        assert r.status_code == 200, r.text

    before = len(engine.fsyncs)
    threads = [threading.Thread(target=post, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    # 16 acknowledged writes, each fsync held 0.2 s: one fsync each would take 3.2 s
    assert len(engine.fsyncs) - before <= 8, len(engine.fsyncs) - before


def test_the_fsync_is_an_fdatasync_of_the_wal_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fdatasync: the WAL's data and size, without a journal commit for its mtime (walsync.sync_data)."""
    synced: list[str] = []
    full: list[int] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(walsync.os, "fdatasync", recording)
    monkeypatch.setattr(walsync.os, "fsync", full.append)
    db = tmp_path / "engine.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    walsync.WalSync(db, lambda exc: exc).fsync()
    conn.close()
    assert synced == [str(db) + "-wal"]
    assert full == []
