"""The engine's clock: milliseconds since the epoch, injected so tests can tick time by hand.

Every due time in the queue (``ready_at``, ``lease_until``) is on this
clock, so a test that replaces it controls sleeps, retries and timeouts
without waiting for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
"""Milliseconds since the epoch."""


def system_clock() -> int:
    return time.time_ns() // 1_000_000
