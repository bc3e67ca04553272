"""The connected workers (one per WebSocket connection) and which one gets the next request.

Requests go to a *ready* worker of the app (handshake done, not draining)
with room under its declared ``max_worker_concurrency``, the least busy
first. A worker's status: ``connected`` (handshake under way), ``ready``,
``draining`` (it sent WORKER_PAUSE, or the engine is closing: no new
requests, its in-flight ones finish).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from agentcmd.engine.connect.view import WorkerView


@dataclass
class Worker:
    ws: Any                                  # websockets' ServerConnection
    connection_id: str
    instance_id: str
    app_ids: tuple[str, ...]
    address: str
    connected_at_ms: int
    sdk: str
    capacity: int | None
    status: str = "connected"
    in_flight: int = 0
    last_heartbeat_ms: int = 0
    last_seen: float = field(default_factory=time.monotonic)   # any frame counts as a sign of life
    acks: list[bytes] = field(default_factory=list)             # WORKER_REPLY_ACKs not yet sent (acks.py)
    ack_timer: asyncio.TimerHandle | None = None                # sends them if no request goes first

    @property
    def has_room(self) -> bool:
        return self.status == "ready" and (self.capacity is None or self.in_flight < self.capacity)

    def view(self) -> WorkerView:
        return WorkerView(self.connection_id, self.instance_id, self.app_ids, self.address, self.connected_at_ms,
                          self.last_heartbeat_ms, self.in_flight, self.capacity, self.status, self.sdk)


class Workers:
    """Every connection, by id; the gateway is their only writer (one event loop: no locks)."""

    def __init__(self) -> None:
        self.by_id: dict[str, Worker] = {}

    def add(self, worker: Worker) -> None:
        self.by_id[worker.connection_id] = worker

    def remove(self, worker: Worker) -> None:
        if self.by_id.get(worker.connection_id) is worker:
            del self.by_id[worker.connection_id]

    def serving(self, app_id: str) -> list[Worker]:
        return [w for w in self.by_id.values() if app_id in w.app_ids and w.status == "ready"]

    def pick(self, app_id: str) -> tuple[Worker | None, int]:
        """(the least busy ready worker of ``app_id`` with room, how many ready workers it has)."""
        ready = self.serving(app_id)
        roomy = [w for w in ready if w.has_room]
        return (min(roomy, key=lambda w: w.in_flight) if roomy else None), len(ready)

    def views(self) -> list[WorkerView]:
        return [w.view() for w in sorted(self.by_id.values(), key=lambda w: w.connected_at_ms)]
