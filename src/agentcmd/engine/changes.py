"""``Changes``: "the engine's database changed", for readers that wait for news instead of polling.

A live dashboard page (``engine/dashboard/live.py``) keeps one server-sent
events stream open and must send a new version when its run moves. Polling
the store for every open stream every second costs queries even when
nothing happens; instead the engine bumps this notifier after every commit
that changed a row (``Database.on_change``, wired in ``engine/app.py``) and
each stream recomputes its page's fingerprint only then (and after a slow
fallback interval, should a change ever be missed).

Every write of the engine goes through the one ``Database`` on the event
loop, so a commit hook sees them all: runs created, calls leased (a step
starts running), answers applied (memos, history), runs finished or
cancelled, timers and waits resolved. It also fires for writes no page
shows (an event stored, a rate-limit mark): a stream then recomputes and
finds the same version, and sends nothing. ``wait`` coalesces: under load a
stream recomputes at most once per ``min_gap_s``, however often commits
come. The store itself knows nothing of this: it only calls a callback.

One notifier per process; waiters may sit on other event loops (tests serve
a dashboard in a thread), so a waiter on another loop is woken thread-safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

MIN_GAP_S = 0.2
"""A stream recomputes at most this often under a stream of commits (a burst is one change to a reader)."""


class Changes:
    """A change counter with waiters; ``bump()`` after a commit, ``wait(seen)`` to sleep until the next."""

    def __init__(self, min_gap_s: float = MIN_GAP_S) -> None:
        self.generation = 0
        self.min_gap_s = min_gap_s
        self._waiters: set[asyncio.Future[None]] = set()

    def bump(self) -> None:
        """Something changed: wake every waiter (cheap when nobody waits: one increment)."""
        self.generation += 1
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, set()
        running = asyncio.events._get_running_loop()
        for fut in waiters:
            loop = fut.get_loop()
            if loop is running:
                _resolve(fut)
            else:
                with contextlib.suppress(RuntimeError):    # that loop has closed: nobody to wake
                    loop.call_soon_threadsafe(_resolve, fut)

    async def wait(self, seen: int, since: float | None = None) -> int:
        """Return once ``generation`` has moved past ``seen`` (at once if it already has).

        ``since``: the ``time.monotonic()`` of the caller's last look; the
        return is held back until ``min_gap_s`` after it, so a burst of
        commits costs a reader one recompute. Returns the generation seen.
        """
        if self.generation == seen:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.add(fut)
            try:
                await fut
            finally:
                self._waiters.discard(fut)
        if since is not None:
            rest = since + self.min_gap_s - time.monotonic()
            if rest > 0:
                await asyncio.sleep(rest)
        return self.generation


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
