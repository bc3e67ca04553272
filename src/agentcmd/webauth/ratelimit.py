"""Failed-login rate limit: per client and overall, sliding window, injected clock.

Per client stops one browser or script from guessing; the overall cap stops
a guesser that rotates addresses. Only failures count, and a success clears
that client's record, so a user who mistyped once is not punished. The table
of clients is bounded so a flood of addresses cannot grow memory.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_CLIENTS = 10_000


class LoginLimiter:
    def __init__(self, max_failures: int = 5, window_s: float = 60.0, global_max: int = 50,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.global_max = global_max
        self._clock = clock
        self._by_client: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _prune(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when a login attempt is allowed now."""
        now = self._clock()
        self._prune(self._all, now)
        waits = [0.0]
        if len(self._all) >= self.global_max:
            waits.append(self._all[0] + self.window_s - now)
        times = self._by_client.get(client)
        if times is not None:
            self._prune(times, now)
            if len(times) >= self.max_failures:
                waits.append(times[0] + self.window_s - now)
        return max(waits)

    def failed(self, client: str) -> None:
        now = self._clock()
        if client not in self._by_client and len(self._by_client) >= MAX_CLIENTS:
            for key in [k for k, v in self._by_client.items() if not v or v[-1] <= now - self.window_s]:
                del self._by_client[key]
            if len(self._by_client) >= MAX_CLIENTS:  # still full: forget the oldest client
                del self._by_client[next(iter(self._by_client))]
        self._by_client.setdefault(client, deque()).append(now)
        self._all.append(now)

    def succeeded(self, client: str) -> None:
        self._by_client.pop(client, None)
