"""The worker loop with a stub executor: bounded concurrency, no spinning when saturated."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from agentcmd.engine.clock import system_clock
from agentcmd.engine.store import apps, now_ms, open_store
from agentcmd.engine.store.models import CallContext, RunSpec
from agentcmd.engine.worker import Worker

FN = '{"id": "app-fn", "steps": {"step": {"runtime": {"url": "http://x/api?fnId=app-fn&stepId=step"}}}}'


class StubExecutor:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.max_running = 0
        self.calls = 0
        self.on_new_work: Any = lambda: None

    def lease_until(self) -> int:
        return now_ms() + 60_000

    def interrupt_calls(self) -> int:
        return 0

    async def call(self, ctx: CallContext) -> list[CallContext]:
        self.calls += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        await self.release.wait()
        self.running -= 1
        return []


async def test_a_saturated_worker_waits_instead_of_polling() -> None:
    store = open_store(None)

    def setup(conn: sqlite3.Connection) -> None:
        apps.upsert_app_txn(conn, "app", "http://x/api", "", "", "c", [("app-fn", "u", "fn", "http://x/api", FN)],
                            now_ms())

    await store.write(setup)
    await store.create_runs([RunSpec(f"R{i}", "app-fn", "app", [{"name": "e"}], "E", 1) for i in range(5)], None)
    executor = StubExecutor()
    worker = Worker(store, executor, dispatcher=None, clock=system_clock, concurrency=2)  # type: ignore[arg-type]
    leases = 0
    real = store.lease_due

    async def counting(*a: Any) -> Any:
        nonlocal leases
        leases += 1
        return await real(*a)

    store.lease_due = counting  # type: ignore[method-assign]
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.3)
        assert executor.max_running == 2      # bounded by concurrency
        assert leases <= 3                    # saturated: waiting on a free slot, not polling
        executor.release.set()
        for _ in range(300):
            if executor.calls == 5:
                break
            await asyncio.sleep(0.01)
        assert executor.calls == 5           # every run got its call once slots freed up
    finally:
        await worker.stop(1)
        task.cancel()
        store.close()
    assert executor.max_running == 2


class BrokenExecutor(StubExecutor):
    async def call(self, ctx: CallContext) -> list[CallContext]:
        self.calls += 1
        raise RuntimeError("an engine bug")


async def test_an_item_the_engine_keeps_failing_on_fails_its_run_instead_of_looping() -> None:
    from agentcmd.engine.store import queries
    from agentcmd.engine.worker import MAX_ENGINE_ATTEMPTS

    store = open_store(None)

    def setup(conn: sqlite3.Connection) -> None:
        apps.upsert_app_txn(conn, "app", "http://x/api", "", "", "c", [("app-fn", "u", "fn", "http://x/api", FN)],
                            now_ms())

    await store.write(setup)
    await store.create_runs([RunSpec("R1", "app-fn", "app", [{"name": "e"}], "E", 1)], None)
    executor = BrokenExecutor()
    worker = Worker(store, executor, dispatcher=None, clock=system_clock, concurrency=2)  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run())
    try:
        run: Any = None
        for _ in range(1000):
            run = await store.read(lambda c: queries.get_run(c, "R1"))
            if run["status"] == "Failed":
                break
            await asyncio.sleep(0.01)
        assert run["status"] == "Failed" and run["output"]["code"] == "engine_error"
        assert executor.calls == MAX_ENGINE_ATTEMPTS
    finally:
        await worker.stop(1)
        task.cancel()
        store.close()


async def test_a_backlog_leaves_an_eighth_of_the_slots_to_events_senders_just_posted() -> None:
    store = open_store(None)

    def setup(conn: sqlite3.Connection) -> None:
        apps.upsert_app_txn(conn, "app", "http://x/api", "", "", "c", [("app-fn", "u", "fn", "http://x/api", FN)],
                            now_ms())

    await store.write(setup)
    await store.create_runs([RunSpec(f"R{i}", "app-fn", "app", [{"name": "e"}], "E", 1) for i in range(40)], None)
    executor = StubExecutor()
    worker = Worker(store, executor, dispatcher=None, clock=system_clock, concurrency=16)  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(300):
            if executor.running == 14:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)              # give it the chance to take more than it should
        assert executor.running == 14         # the queue's backlog gets 16 - 16 // 8 slots
        assert worker.free_slots == 2         # what POST /e may still dispatch at once
    finally:
        executor.release.set()
        await worker.stop(1)
        task.cancel()
        store.close()
