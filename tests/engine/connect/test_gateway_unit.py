"""Gateway mechanics that a real worker takes too long to show: the queue row's lease kept alive under a
long connect call, capacity waits, and a send that fails going to the next worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from inngest.connect._internal import connect_pb2 as pb
from tests.polling import until

from agentcmd.engine.connect import acks
from agentcmd.engine.connect.gateway import Gateway, Hooks
from agentcmd.engine.connect.wire import function_url
from agentcmd.engine.connect.workers import Worker
from agentcmd.engine.protocol import ResponseKind


class FakeSocket:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Any] = []
        self.fail = fail

    async def send(self, data: bytes) -> None:
        if self.fail:
            raise ConnectionError("closed")
        msg = pb.ConnectMessage()
        msg.ParseFromString(data)
        req = pb.GatewayExecutorRequestData()
        req.ParseFromString(msg.payload)
        self.sent.append(req)


def _gateway(extended: list[tuple[int, int]], queue_lease_ms: int = 100_000) -> Gateway:
    async def register(body: dict[str, Any]) -> None: ...

    async def extend(item_id: int, until: int) -> None:
        extended.append((item_id, until))

    return Gateway(Hooks(register, lambda: None, extend, queue_lease_ms), production=False)


def _worker(gateway: Gateway, name: str, ws: FakeSocket, capacity: int | None = None) -> Worker:
    worker = Worker(ws, name, name, ("app",), "127.0.0.1:1", 0, "test", capacity)
    gateway.conns.add(worker)
    gateway.ready(worker)
    return worker


HEADERS = {"X-Run-ID": "run1", "X-Inngest-Job-ID": "run1:42"}


async def test_a_long_call_keeps_its_queue_row_leased() -> None:
    extended: list[tuple[int, int]] = []
    gateway = _gateway(extended, queue_lease_ms=100)
    ws = FakeSocket()
    _worker(gateway, "w1", ws)
    call = asyncio.create_task(gateway.call(function_url("app", "app-fn"), b"{}", HEADERS))
    await asyncio.sleep(0.01)
    req = ws.sent[0]
    assert (req.function_slug, req.run_id) == ("app-fn", "run1")
    assert await gateway.extend(req.request_id, "wrong lease id") is None
    lease = await gateway.extend(req.request_id, req.lease_id)
    assert lease and extended == []           # the row's lease is still young
    await asyncio.sleep(0.06)                 # past half of the row's lease
    assert await gateway.extend(req.request_id, lease)
    assert [item for item, _ in extended] == [42]
    gateway.replied(pb.SDKResponse(request_id=req.request_id, status=pb.SDKResponseStatus.DONE, body=b"1"))
    resp = await call
    assert resp.kind == ResponseKind.DONE and resp.body == "1"
    assert gateway.pending == {} and gateway.conns.by_id["w1"].in_flight == 0


async def test_a_full_worker_makes_the_call_wait_for_room() -> None:
    gateway = _gateway([])
    ws = FakeSocket()
    _worker(gateway, "w1", ws, capacity=1)
    first = asyncio.create_task(gateway.call(function_url("app", "app-fn"), b"{}", HEADERS))
    second = asyncio.create_task(gateway.call(function_url("app", "app-fn"), b"{}", HEADERS))
    await asyncio.sleep(0.05)
    assert len(ws.sent) == 1                  # the second waits for room
    gateway.replied(pb.SDKResponse(request_id=ws.sent[0].request_id, status=pb.SDKResponseStatus.DONE, body=b"1"))
    assert (await first).kind == ResponseKind.DONE
    await asyncio.sleep(0.05)
    assert len(ws.sent) == 2
    gateway.replied(pb.SDKResponse(request_id=ws.sent[1].request_id, status=pb.SDKResponseStatus.DONE, body=b"2"))
    assert (await second).body == "2"


async def test_a_failed_send_goes_to_the_next_worker_and_no_worker_is_an_interruption() -> None:
    gateway = _gateway([])
    broken, good = FakeSocket(fail=True), FakeSocket()
    _worker(gateway, "broken", broken)
    call = asyncio.create_task(gateway.call(function_url("app", "app-fn"), b"{}", HEADERS))
    await asyncio.sleep(0.01)
    # The broken worker was tried once and is never picked again; with no other, the call is an interruption.
    resp = await call
    assert resp.kind == ResponseKind.INTERRUPTED and "1 draining" in resp.message
    assert gateway.conns.by_id["broken"].status == "draining"
    _worker(gateway, "good", good)
    call = asyncio.create_task(gateway.call(function_url("app", "app-fn"), b"{}", HEADERS))
    await asyncio.sleep(0.01)
    assert len(good.sent) == 1
    gateway.replied(pb.SDKResponse(request_id=good.sent[0].request_id, status=pb.SDKResponseStatus.NOT_COMPLETED,
                                   body=b"[]", sdk_version="py:v1"))
    assert (await call).kind == ResponseKind.OPS
    none = await gateway.call(function_url("other", "other-fn"), b"{}", HEADERS)
    assert none.kind == ResponseKind.INTERRUPTED and "no connect worker of app other" in none.message


class BufferingSocket:
    """websockets' shape: frames buffered on ``protocol`` go out with the next ``send``, in one write."""

    def __init__(self) -> None:
        self.writes: list[list[int]] = []     # the kinds of the frames of each write
        self.buffered: list[bytes] = []
        self.protocol = self

    def send_binary(self, data: bytes) -> None:
        self.buffered.append(data)

    async def send(self, data: bytes) -> None:
        frames, self.buffered = [*self.buffered, data], []
        kinds = []
        for raw in frames:
            msg = pb.ConnectMessage()
            msg.ParseFromString(raw)
            kinds.append(msg.kind)
        self.writes.append(kinds)


async def test_a_reply_ack_rides_with_the_next_request_or_goes_alone_soon() -> None:
    gateway = _gateway([])
    ws = BufferingSocket()
    worker = _worker(gateway, "w1", ws)  # type: ignore[arg-type]
    acks.queue(worker, "r1")
    call = asyncio.create_task(gateway.call(function_url("app", "app-fn"), b"{}", HEADERS))
    await until(lambda: ws.writes, what="the request")
    assert ws.writes == [[pb.WORKER_REPLY_ACK, pb.GATEWAY_EXECUTOR_REQUEST]]     # one write, the ack first
    assert worker.ack_timer is None and not worker.acks
    call.cancel()
    # No request follows: the ack still goes, on its own, within ACK_DELAY_S.
    acks.queue(worker, "r2")
    acks.queue(worker, "r3")
    assert ws.writes == [[pb.WORKER_REPLY_ACK, pb.GATEWAY_EXECUTOR_REQUEST]]
    await until(lambda: len(ws.writes) == 2, timeout=1, what="the lone acks")
    assert ws.writes[1] == [pb.WORKER_REPLY_ACK, pb.WORKER_REPLY_ACK]
    assert worker.ack_timer is None and not worker.acks
