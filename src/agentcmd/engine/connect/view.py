"""What the engine shows of its connect workers: the dashboard's apps page and ``/v1`` read this.

A snapshot type of its own so that the pages do not depend on the gateway's
internals (sockets, leases), only on what a user wants to know of a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WorkerView:
    """One connected worker (one WebSocket connection), as of the moment it was read."""

    connection_id: str
    instance_id: str
    app_ids: tuple[str, ...]        # the apps this connection serves (one connection may carry several)
    address: str                    # the peer as the gateway saw it, "host:port"
    connected_at_ms: int
    last_heartbeat_ms: int
    in_flight: int                  # executor requests sent and not yet answered
    capacity: int | None            # the worker's declared max concurrency; None: no limit
    status: str                     # "connected" (handshake), "ready", "draining"
    sdk: str                        # e.g. "python v0.5.19"


class ConnectView(Protocol):
    """The gateway as the read side sees it."""

    @property
    def endpoint(self) -> str | None:
        """The gateway's WebSocket URL, or None when connect is off or its port could not be bound."""

    def workers(self) -> list[WorkerView]:
        """Every connected worker, oldest connection first."""
