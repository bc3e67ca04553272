"""The engine's change notifier: a commit that changed a row wakes live readers; a burst is one wake-up."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from agentcmd.engine.changes import Changes
from agentcmd.engine.store import open_store


def test_a_commit_that_changes_a_row_bumps_and_one_that_does_not_stays_quiet(tmp_path: Path) -> None:
    store = open_store(tmp_path / "engine.db")
    changes = Changes()
    store.db.on_change = changes.bump

    async def scenario() -> list[int]:
        seen = [changes.generation]
        await store.write(lambda c: c.execute("SELECT 1").fetchall())     # reads only: no change
        seen.append(changes.generation)
        await store.write(lambda c: c.execute(
            "INSERT INTO apps (app_id, url, sdk, framework, error, synced_at) VALUES ('a','u','s','f',NULL,1)"))
        seen.append(changes.generation)
        return seen

    try:
        assert asyncio.run(scenario()) == [0, 0, 1]
    finally:
        store.close()


def test_wait_returns_on_the_next_bump_and_a_burst_costs_one_look() -> None:
    async def scenario() -> tuple[int, float]:
        changes = Changes(min_gap_s=0.3)
        since = time.monotonic()
        waiter = asyncio.create_task(changes.wait(changes.generation, since))
        await asyncio.sleep(0)
        assert not waiter.done()
        for _ in range(50):
            changes.bump()
        generation = await waiter
        return generation, time.monotonic() - since

    generation, took = asyncio.run(scenario())
    assert generation == 50          # one wake-up saw the whole burst
    assert took >= 0.3               # held back to min_gap_s after the last look


def test_a_waiter_on_another_loop_is_woken() -> None:
    changes = Changes(min_gap_s=0)
    woke = threading.Event()
    waiting = threading.Event()

    async def wait_there() -> None:
        task = asyncio.create_task(changes.wait(0))
        await asyncio.sleep(0)
        waiting.set()
        await task
        woke.set()

    thread = threading.Thread(target=lambda: asyncio.run(wait_there()))
    thread.start()
    assert waiting.wait(5)

    async def bump_here() -> None:
        changes.bump()

    asyncio.run(bump_here())
    assert woke.wait(5)
    thread.join(5)
