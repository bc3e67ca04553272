"""One worker's WebSocket: the handshake, then its frames until it closes.

    gateway: GATEWAY_HELLO
    worker:  WORKER_CONNECT (session token, apps and their functions, capacity)
    gateway: registers each app like an HTTP sync, then GATEWAY_CONNECTION_READY
    then:    executor requests out; acks, lease extensions, replies, heartbeats, WORKER_PAUSE in

A frame that is not the protobuf it should be closes the socket with code
1008 and a reason saying what was wrong (the SDK logs it and reconnects); a
bad session token closes it the same way, before any app is registered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from websockets.exceptions import ConnectionClosed

from agentcmd.engine.connect import acks, wire
from agentcmd.engine.connect.gateway import Gateway
from agentcmd.engine.connect.wire import Kind, MalformedMessage, pb
from agentcmd.engine.connect.workers import Worker
from agentcmd.engine.store import now_ms
from agentcmd.errors import AgentcmdError, InputError

log = logging.getLogger("agentcmd.engine.connect")
HELLO_TIMEOUT_S = 10.0
POLICY = 1008            # WebSocket close code: policy violation (bad frame, bad token)
TRY_AGAIN = 1013         # try again later (the engine cannot store the app right now)


def reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    raw = text.encode()[:120]
    return raw.decode(errors="ignore")


def _message(raw: Any) -> Any:
    if not isinstance(raw, bytes):
        raise MalformedMessage("text frame: the connect protocol sends binary protobuf ConnectMessage frames")
    return wire.parse(pb.ConnectMessage, raw, "frame")


def _peer(ws: Any) -> str:
    addr = getattr(ws, "remote_address", None)
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return "unknown"


async def handle(gateway: Gateway, ws: Any) -> None:
    """The websockets handler of one connection; never raises."""
    worker: Worker | None = None
    why = "closed"
    try:
        await ws.send(wire.frame(Kind.GATEWAY_HELLO))
        worker = await _handshake(gateway, ws)
        if worker is None:
            return
        async for raw in ws:
            await _dispatch(gateway, worker, raw)
        why = f"closed by the worker ({ws.close_code})"
    except MalformedMessage as exc:
        why = str(exc)
        log.warning("connect: closing the connection from %s: %s", _peer(ws), exc)
        await ws.close(POLICY, reason(str(exc)))
    except (ConnectionClosed, TimeoutError) as exc:
        why = f"connection lost ({exc})" if isinstance(exc, ConnectionClosed) else "no WORKER_CONNECT in time"
        if isinstance(exc, TimeoutError):
            await ws.close(POLICY, reason(f"no WORKER_CONNECT within {HELLO_TIMEOUT_S:g} s of GATEWAY_HELLO"))
    except Exception as exc:     # a bug of ours: this connection ends, the engine goes on
        why = f"internal error: {exc!r}"
        log.exception("connect: the connection from %s failed inside the engine", _peer(ws))
        await ws.close(1011, "internal error in the engine's gateway (see its log)")
    finally:
        if worker is not None:
            gateway.gone(worker, why)


async def _handshake(gateway: Gateway, ws: Any) -> Worker | None:
    msg = _message(await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S))
    if msg.kind != Kind.WORKER_CONNECT:
        raise MalformedMessage(f"expected WORKER_CONNECT after GATEWAY_HELLO, got {_kind_name(msg.kind)}")
    data = wire.parse(pb.WorkerConnectRequestData, msg.payload, "WORKER_CONNECT")
    denied = gateway.check_token(data.auth_data.session_token, data.connection_id)
    if denied is not None:
        log.warning("connect: refused a worker from %s: %s", _peer(ws), denied)
        await ws.close(POLICY, reason(denied))
        return None
    if not data.apps:
        raise MalformedMessage("WORKER_CONNECT lists no apps")
    capacity = data.max_worker_concurrency if data.HasField("max_worker_concurrency") else 0
    worker = Worker(ws, data.connection_id or gateway.issue()[0], data.instance_id or _peer(ws),
                    tuple(app.app_name for app in data.apps), _peer(ws), now_ms(),
                    f"{data.sdk_language} v{data.sdk_version}".strip(), capacity if capacity > 0 else None)
    gateway.conns.add(worker)
    for app in data.apps:
        failed = await _register(gateway, worker, app, data)
        if failed is not None:
            gateway.conns.remove(worker)
            await ws.send(wire.frame(Kind.SYNC_FAILED, pb.SystemError(code="sync_failed", message=failed[1])))
            await ws.close(failed[0], reason(failed[1]))
            return None
    ready = pb.GatewayConnectionReadyData(heartbeat_interval=f"{wire.HEARTBEAT_INTERVAL_S}s",
                                          extend_lease_interval=f"{wire.EXTEND_LEASE_INTERVAL_S}s")
    await ws.send(wire.frame(Kind.GATEWAY_CONNECTION_READY, ready))
    gateway.heard(worker, heartbeat=True)
    gateway.ready(worker)
    return worker


async def _register(gateway: Gateway, worker: Worker, app: Any, data: Any) -> tuple[int, str] | None:
    """Register one app like an HTTP sync (apps and functions pages, triggers); (close code, why) if it failed."""
    if not app.app_name:
        return POLICY, "invalid WORKER_CONNECT: an app without app_name"
    body = {"appname": app.app_name, "url": wire.app_url(app.app_name), "framework": "connect",
            "sdk": f"{data.sdk_language}:v{data.sdk_version}", "v": "0.1",
            "functions": wire.connect_functions(app.app_name, bytes(app.functions))}
    try:
        await gateway.hooks.register(body)
    except AgentcmdError as err:
        bad = isinstance(err, InputError)
        what = f"invalid app {app.app_name!r}: {err.what}" if bad else (
            f"the engine could not store app {app.app_name!r}: {err.what}")
        log.warning("connect: sync of app %s from worker %s failed: %s", app.app_name, worker.address, what)
        return (POLICY if bad else TRY_AGAIN), what
    return None


def _kind_name(kind: int) -> str:
    try:
        return str(Kind.Name(kind))
    except ValueError:
        return f"unknown kind {kind}"


async def _dispatch(gateway: Gateway, worker: Worker, raw: Any) -> None:
    msg = _message(raw)
    kind = msg.kind
    gateway.heard(worker, heartbeat=kind == Kind.WORKER_HEARTBEAT)
    ws = worker.ws
    if kind == Kind.WORKER_REPLY:
        reply = wire.parse(pb.SDKResponse, msg.payload, "WORKER_REPLY")
        gateway.replied(reply)
        acks.queue(worker, reply.request_id)
    elif kind == Kind.WORKER_REQUEST_ACK:
        gateway.acked(wire.parse(pb.WorkerRequestAckData, msg.payload, "WORKER_REQUEST_ACK").request_id)
    elif kind == Kind.WORKER_HEARTBEAT:
        await ws.send(wire.frame(Kind.GATEWAY_HEARTBEAT))
    elif kind == Kind.WORKER_REQUEST_EXTEND_LEASE:
        ext = wire.parse(pb.WorkerRequestExtendLeaseData, msg.payload, "WORKER_REQUEST_EXTEND_LEASE")
        new_lease = await gateway.extend(ext.request_id, ext.lease_id)
        ack = pb.WorkerRequestExtendLeaseAckData(request_id=ext.request_id, app_id=ext.app_id,
                                                 function_slug=ext.function_slug)
        if new_lease is not None:
            ack.new_lease_id = new_lease
        await ws.send(wire.frame(Kind.WORKER_REQUEST_EXTEND_LEASE_ACK, ack))
    elif kind == Kind.WORKER_PAUSE:
        worker.status = "draining"
        log.info("connect: worker %s of app %s is draining (%d requests in flight finish)", worker.connection_id,
                 ", ".join(worker.app_ids), worker.in_flight)
    else:
        log.debug("connect: ignoring %s from worker %s", _kind_name(kind), worker.connection_id)
