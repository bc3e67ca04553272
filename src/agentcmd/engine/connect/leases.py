"""Requests sent to connect workers and their leases: the part of the gateway that needs no socket.

A request is *leased* to the worker it was sent to. The worker's ack and
each of its lease extensions (every ``EXTEND_LEASE_INTERVAL_S``, told in
GATEWAY_CONNECTION_READY) renew the lease for ``LEASE_S``; a lease that
runs out means the worker died, hangs or lost its socket for good, and the
call comes back INTERRUPTED (no attempt used: the executor waits for a
worker and sends it again). The lease belongs to the request, not to the
socket: a worker that reconnects keeps extending its requests over the new
socket, and its reply may come over any socket or ``/v0/connect/flush``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from agentcmd.engine.connect.wire import EXTEND_LEASE_INTERVAL_S
from agentcmd.engine.protocol import ResponseKind, SDKResponse

# Two extension intervals and some slack: one lost extension is not a dead worker. It also covers
# the SDK's flush of a reply it could not send (after one interval, polled every second).
LEASE_S = 2 * EXTEND_LEASE_INTERVAL_S + 2.0


@dataclass
class Pending:
    """One executor request in flight on a worker."""

    request_id: str
    app_id: str
    connection_id: str
    run_id: str
    item_id: int | None                      # the queue row whose lease must outlive a long call
    lease_id: str
    deadline: float                          # monotonic seconds
    queue_lease_until: int                   # ms epoch: when the queue row's lease was last known to end
    future: asyncio.Future[SDKResponse] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    acked: bool = False

    def renew(self) -> None:
        self.deadline = time.monotonic() + LEASE_S

    def resolve(self, resp: SDKResponse) -> bool:
        if self.future.done():
            return False
        self.future.set_result(resp)
        return True


def interrupted(message: str) -> SDKResponse:
    return SDKResponse(ResponseKind.INTERRUPTED, 0, message=message)


def lapsed(pending: Pending) -> SDKResponse:
    what = "acknowledged" if pending.acked else "acknowledge"
    return interrupted(
        f"connect worker {pending.connection_id} of app {pending.app_id} stopped answering: it did not "
        f"{what} or extend its lease on request {pending.request_id} for {LEASE_S:g} s (killed, hung or "
        "disconnected); the call goes to the next ready worker, same attempt")


def item_id_of(headers: dict[str, str] | None) -> int | None:
    """The queue row id from the executor's ``X-Inngest-Job-ID: <run>:<item>`` header."""
    job = (headers or {}).get("X-Inngest-Job-ID", "")
    tail = job.rpartition(":")[2]
    return int(tail) if tail.isdigit() else None
