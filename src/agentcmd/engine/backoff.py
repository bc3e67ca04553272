"""When a failed attempt runs again: Go's backoff table, or a flat interval. The rows live in ``store``.

Queue items carry ``ready_at``, ``lease_until`` and ``attempt`` as columns
(``store/migrations/0001_init.sql``); kinds are ``QueueKind``. Sleeps, wait
timeouts, retries, debounce and cron ticks are all rows with a future
``ready_at``: there are no in-memory timers to lose in a crash. This module
holds the pure parts: when the next attempt is due.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff"]

# Go's default table (pkg/backoff), indexed by the 0-based attempt that failed.
DEFAULT_SCHEDULE_S = (15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200)
MAX_JITTER_MS = 30_000

@dataclass(frozen=True)
class Backoff:
    """When to retry: Go's table plus up to 30 s jitter, or a flat interval (``--retry-interval``)."""

    flat_ms: int | None = None
    jitter_ms: int = MAX_JITTER_MS
    rng: Callable[[], float] = random.random

    def delay_ms(self, attempt: int) -> int:
        if self.flat_ms is not None:
            return self.flat_ms
        base = DEFAULT_SCHEDULE_S[min(attempt, len(DEFAULT_SCHEDULE_S) - 1)] * 1000
        return base + int(self.rng() * self.jitter_ms)

    def next_at(self, now: int, attempt: int, retry_at: int | None = None) -> int:
        """The retry time: the SDK's ``retry-after`` wins over the table."""
        return retry_at if retry_at is not None else now + self.delay_ms(attempt)
