"""Failed-login rate limit per client, sliding window, injected clock; never a global lockout.

Per client stops one browser or script from guessing: ``max_failures`` in
``window_s``, then 429 until the oldest failure leaves the window. Only
failures count, and a success clears that client's record, so a user who
mistyped once is not punished.

There is no overall cap that refuses everyone: that would let anyone lock
the right token out (50 bad guesses a minute from anywhere). Instead, when
more than ``global_max`` logins failed in the window (someone is guessing
from many addresses), every client that already failed in the window is
held to ONE attempt per window. A client with no recent failure may always
try, so the owner of the token still logs in during an attack; a guesser
rotating addresses gets one guess per address and minute. (IPv6 clients
are keyed by /64, ``proxy.limiter_key``, so an address block does not
count as many clients.)

Memory is bounded: at most ``max_clients`` client records of at most
``max_failures`` timestamps, and the overall window keeps ``global_max``.
A full table first drops clients whose failures all left the window, then
the client whose last failure is oldest.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_CLIENTS = 10_000


class LoginLimiter:
    def __init__(self, max_failures: int = 5, window_s: float = 60.0, global_max: int = 50,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS) -> None:
        self.max_failures = max(1, max_failures)
        self.window_s = window_s
        self.global_max = max(1, global_max)
        self.max_clients = max(1, max_clients)
        self._clock = clock
        self._by_client: dict[str, deque[float]] = {}
        self._all: deque[float] = deque(maxlen=self.global_max)

    def _prune(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()

    def under_attack(self) -> bool:
        """Did at least ``global_max`` logins fail in the window, across all clients?"""
        self._prune(self._all, self._clock())
        return len(self._all) >= self.global_max

    def allowance(self) -> int:
        """Failed attempts a client may make in one window right now."""
        return 1 if self.under_attack() else self.max_failures

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when a login attempt is allowed now."""
        times = self._by_client.get(client)
        if not times:
            return 0.0
        now = self._clock()
        self._prune(times, now)
        if not times:
            del self._by_client[client]
            return 0.0
        allowed = self.allowance()
        if len(times) < allowed:
            return 0.0
        return max(0.0, times[len(times) - allowed] + self.window_s - now)

    def failed(self, client: str) -> None:
        now = self._clock()
        times = self._by_client.get(client)
        if times is None:
            self._make_room(now)
            times = self._by_client[client] = deque(maxlen=self.max_failures)
        else:  # most recently failed last: the eviction order below
            del self._by_client[client]
            self._by_client[client] = times
        times.append(now)
        self._all.append(now)

    def succeeded(self, client: str) -> None:
        self._by_client.pop(client, None)

    def _make_room(self, now: float) -> None:
        if len(self._by_client) < self.max_clients:
            return
        for key in [k for k, v in self._by_client.items() if not v or v[-1] <= now - self.window_s]:
            del self._by_client[key]
        while len(self._by_client) >= self.max_clients:  # still full: forget the longest-quiet client
            del self._by_client[next(iter(self._by_client))]

    def clients(self) -> int:
        """How many client records are kept (bounded by ``max_clients``)."""
        return len(self._by_client)
