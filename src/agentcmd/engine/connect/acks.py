"""WORKER_REPLY_ACKs, held back a moment so they ride along with the next request to the same worker.

Each reply gets its ack, but sending it at once costs a frame write of its
own (and a wake-up of the SDK's socket thread) for a message that is never
urgent: an unacked reply stays in the SDK's buffer and is flushed over HTTP
(``/v0/connect/flush``, where the gateway ignores a reply already answered)
only after the lease interval, 5 s. The gateway's next request to that
worker usually follows within a millisecond; the acks queued for it go in
the same write. When no request follows, they go on their own after
``ACK_DELAY_S``. A socket that closes first loses its queued acks: the SDK
then flushes those replies over HTTP, which changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from agentcmd.engine.connect import wire
from agentcmd.engine.connect.wire import Kind, pb
from agentcmd.engine.connect.workers import Worker

ACK_DELAY_S = 0.005   # the longest an ack waits for a request to ride with

_sending: set[asyncio.Future[None]] = set()   # the acks sent alone: referenced until they are written


def queue(worker: Worker, request_id: str, delay_s: float = ACK_DELAY_S) -> None:
    """Ack a reply received from this worker: with its next request, or alone after ``delay_s``."""
    worker.acks.append(wire.frame(Kind.WORKER_REPLY_ACK, pb.WorkerReplyAckData(request_id=request_id)))
    if worker.ack_timer is None:
        worker.ack_timer = asyncio.get_running_loop().call_later(delay_s, _send_alone, worker)


def take(worker: Worker) -> list[bytes]:
    """The acks queued for this worker, now due to go with the caller's frame."""
    frames = worker.acks
    if not frames:
        return frames
    worker.acks = []
    if worker.ack_timer is not None:
        worker.ack_timer.cancel()
        worker.ack_timer = None
    return frames


async def send(ws: Any, frames: list[bytes], data: bytes) -> None:
    """Send ``frames`` then ``data``; in one write when the socket is websockets' (its Sans-I/O protocol)."""
    protocol = getattr(ws, "protocol", None)
    if frames and protocol is not None:
        for ack in frames:
            protocol.send_binary(ack)      # buffered: the send below writes them with its own frame
    else:
        for ack in frames:
            await ws.send(ack)
    await ws.send(data)


def _send_alone(worker: Worker) -> None:
    worker.ack_timer = None
    frames = take(worker)
    if frames:
        task = asyncio.ensure_future(_send_quietly(worker.ws, frames))
        _sending.add(task)
        task.add_done_callback(_sending.discard)


async def _send_quietly(ws: Any, frames: list[bytes]) -> None:
    with contextlib.suppress(Exception):    # the socket closed: the SDK flushes those replies over HTTP
        await send(ws, frames[:-1], frames[-1])
