"""The connect gateway: sends the executor's calls for connect apps to their workers and waits for replies.

``Driver.call`` hands every ``connect://<app id>`` URL to ``Gateway.call``,
which picks a worker (``workers.py``), sends GATEWAY_EXECUTOR_REQUEST with
the same JSON body the HTTP path POSTs, and waits for the WORKER_REPLY (or
its ``/v0/connect/flush``), converted to the ``SDKResponse`` the HTTP path
would have produced (``wire.to_response``): memo, retries and history are
the executor's, unchanged. No ready worker, a send that fails, or a lease
that runs out (``leases.py``) answer INTERRUPTED: not an attempt, the run
waits for a worker (bounded by ``app_wait_timeout``). A connect call is not
bounded by ``call_timeout``: its lease is.

The WebSocket side (handshake, frames) is ``session.py``; the server and
its port ``server.py``; the HTTP routes ``routes.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ulid import ULID

from agentcmd.engine.connect import acks, wire
from agentcmd.engine.connect.ids import Ids
from agentcmd.engine.connect.leases import LEASE_S, Pending, interrupted, item_id_of, lapsed
from agentcmd.engine.connect.view import WorkerView
from agentcmd.engine.connect.wire import Kind, pb
from agentcmd.engine.connect.workers import Worker, Workers
from agentcmd.engine.protocol import SDKResponse
from agentcmd.engine.store import now_ms

log = logging.getLogger("agentcmd.engine.connect")
CAPACITY_WAIT_S = 10.0        # a call waits this long for room on a busy worker before it counts as a wait
HEARTBEATS_MISSED = 3         # a worker silent for this many heartbeat intervals is dropped
TOKEN_TTL_S = 60.0            # a session token must be used (WORKER_CONNECT) this soon after /v0/connect/start
SEND_TRIES = 3                # workers tried for one call when sending fails


@dataclass
class Hooks:
    """What the gateway asks of the engine (given by ``engine.serve.attach_connect``)."""

    register: Callable[[dict[str, Any]], Awaitable[Any]]     # Commands.register_app
    wake: Callable[[], None]                                  # the worker loop: runs waiting for a worker retry
    extend_queue_lease: Callable[[int, int], Awaitable[None]]  # (queue item id, lease until ms)
    queue_lease_ms: int                                       # the executor's lease on a call's queue row


class Gateway:
    def __init__(self, hooks: Hooks, *, production: bool, heartbeat_s: float = wire.HEARTBEAT_INTERVAL_S) -> None:
        self.hooks = hooks
        self.production = production
        self.heartbeat_s = heartbeat_s
        self.conns = Workers()
        self.pending: dict[str, Pending] = {}
        self.tokens: dict[str, tuple[str, float]] = {}     # session token -> (connection id, expires monotonic)
        self.port: int | None = None                        # set once the server listens
        self.host = "127.0.0.1"
        self.unavailable = "the connect gateway is not running"  # why /v0/connect/start answers 503
        self.closing = False
        self.calls = 0
        self.ids = Ids()
        self._room = asyncio.Event()
        self._closing_tasks: set[asyncio.Future[None]] = set()

    # -- ConnectView ---------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str | None:
        if self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/v0/connect"

    def workers(self) -> list[WorkerView]:
        return self.conns.views()

    # -- /v0/connect/start ---------------------------------------------------------------------------

    def issue(self) -> tuple[str, str]:
        """A new (connection id, session token): the token is good for one WORKER_CONNECT with that id."""
        now = time.monotonic()
        for token, (_, expires) in list(self.tokens.items()):
            if expires < now:
                del self.tokens[token]
        connection_id = str(ULID())
        token = secrets.token_urlsafe(32)
        self.tokens[token] = (connection_id, now + TOKEN_TTL_S)
        return connection_id, token

    def check_token(self, token: str, connection_id: str) -> str | None:
        """Why this WORKER_CONNECT may not connect, or None. Dev mode takes any (like the dev server)."""
        entry = self.tokens.pop(token, None) if token else None
        if not self.production:
            return None
        if entry is None or entry[1] < time.monotonic():
            return ("authentication failed: unknown or expired session token (get one from POST /v0/connect/start "
                    "with the signing key)")
        if not secrets.compare_digest(entry[0].encode(), connection_id.encode()):
            return "authentication failed: the session token was issued for another connection id"
        return None

    # -- the executor's calls ------------------------------------------------------------------------

    async def call(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> SDKResponse:
        """Run one SDK call on a worker of the URL's app; never raises (but is cancelled at engine shutdown)."""
        app_id, slug, step_id = wire.split_call_url(url)
        if self.closing:
            return interrupted("the engine is shutting down; the call runs again when it starts")
        self.calls += 1
        for _ in range(SEND_TRIES):
            worker, ready = await self._worker_for(app_id)
            if worker is None:
                return interrupted(self._no_worker(app_id, ready))
            pending = self._lease(worker, app_id, headers)
            request = pb.GatewayExecutorRequestData(
                request_id=pending.request_id, app_id=app_id, app_name=app_id, function_slug=slug,
                function_id=slug, step_id=step_id, request_payload=body, run_id=pending.run_id,
                lease_id=pending.lease_id)
            try:
                await acks.send(worker.ws, acks.take(worker), wire.frame(Kind.GATEWAY_EXECUTOR_REQUEST, request))
            except Exception as exc:   # the socket closed under us: nothing was sent, try another worker
                log.info("connect: could not send a request to worker %s (%s); trying another",
                         worker.connection_id, exc)
                worker.status = "draining"      # its socket is closing: never picked again
                self._release(pending)
                continue
            try:
                return await pending.future
            finally:
                self._release(pending)
        return interrupted(f"could not send the request to any worker of app {app_id} ({SEND_TRIES} tried)")

    def _no_worker(self, app_id: str, ready: int) -> str:
        if ready:
            return (f"all {ready} connect workers of app {app_id} are at their max_worker_concurrency "
                    f"(waited {CAPACITY_WAIT_S:g} s for room)")
        draining = sum(1 for w in self.conns.by_id.values() if app_id in w.app_ids)
        why = f" ({draining} draining or still connecting)" if draining else ""
        return (f"no connect worker of app {app_id} is connected{why}: start one (agentcmd worker, or the SDK's "
                "inngest.connect) pointed at this engine")

    async def _worker_for(self, app_id: str) -> tuple[Worker | None, int]:
        """A worker with room; waits up to ``CAPACITY_WAIT_S`` while every ready worker is full."""
        deadline = time.monotonic() + CAPACITY_WAIT_S
        while True:
            worker, ready = self.conns.pick(app_id)
            left = deadline - time.monotonic()
            if worker is not None or ready == 0 or left <= 0:
                return worker, ready
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), left)

    def _lease(self, worker: Worker, app_id: str, headers: dict[str, str] | None) -> Pending:
        run_id = (headers or {}).get("X-Run-ID", "")
        pending = Pending(self.ids.new(), app_id, worker.connection_id, run_id, item_id_of(headers), self.ids.new(),
                          time.monotonic() + LEASE_S, now_ms() + self.hooks.queue_lease_ms)
        self.pending[pending.request_id] = pending
        worker.in_flight += 1
        return pending

    def _release(self, pending: Pending) -> None:
        if self.pending.pop(pending.request_id, None) is None:
            return
        worker = self.conns.by_id.get(pending.connection_id)
        if worker is not None:
            worker.in_flight = max(0, worker.in_flight - 1)
        self._room.set()

    # -- what workers say about their requests (any socket, or /v0/connect/flush) ---------------------

    def acked(self, request_id: str) -> None:
        pending = self.pending.get(request_id)
        if pending is not None:
            pending.acked = True
            pending.renew()

    async def extend(self, request_id: str, lease_id: str) -> str | None:
        """A lease extension: the new lease id, or None when the lease is gone (the SDK then stops the request)."""
        pending = self.pending.get(request_id)
        if pending is None or pending.future.done() \
                or not secrets.compare_digest(pending.lease_id.encode(), lease_id.encode()):
            return None
        pending.renew()
        pending.lease_id = self.ids.new()
        await self._keep_queue_lease(pending)
        return pending.lease_id

    async def _keep_queue_lease(self, pending: Pending) -> None:
        """A call that outlives half its queue row's lease takes a new one, so the sweep never requeues it."""
        lease_ms = self.hooks.queue_lease_ms
        now = now_ms()
        if pending.item_id is None or now < pending.queue_lease_until - lease_ms // 2:
            return
        pending.queue_lease_until = now + lease_ms
        try:
            await self.hooks.extend_queue_lease(pending.item_id, pending.queue_lease_until)
        except Exception as exc:   # the database is unwritable: the worker's sweep may requeue the row later
            log.warning("connect: could not extend the queue lease of run %s: %s", pending.run_id, exc)

    def replied(self, reply: Any) -> bool:
        """A WORKER_REPLY (or a flushed one): True if it answered a call still waiting."""
        pending = self.pending.get(reply.request_id)
        if pending is None:
            log.debug("connect: reply for request %s that no call waits for (late or duplicate)", reply.request_id)
            return False
        return pending.resolve(wire.to_response(reply, now_ms()))

    # -- workers coming and going --------------------------------------------------------------------

    def ready(self, worker: Worker) -> None:
        """The handshake is done: the worker takes requests; runs waiting for one try again now."""
        if self.closing:
            worker.status = "draining"
            return
        worker.status = "ready"
        self._room.set()
        self.hooks.wake()
        log.info("connect: worker %s (%s, instance %s, %s) ready for app %s", worker.connection_id,
                 worker.address, worker.instance_id, worker.sdk, ", ".join(worker.app_ids))

    def gone(self, worker: Worker, reason: str) -> None:
        """The socket closed. Its requests keep their leases: the worker may reconnect and finish them."""
        self.conns.remove(worker)
        if worker.status != "connected":
            log.info("connect: worker %s of app %s disconnected (%s; %d requests in flight keep their leases)",
                     worker.connection_id, ", ".join(worker.app_ids), reason, worker.in_flight)

    def heard(self, worker: Worker, heartbeat: bool = False) -> None:
        worker.last_seen = time.monotonic()
        if heartbeat:
            worker.last_heartbeat_ms = now_ms()

    async def reap(self) -> None:
        """Every half second: end calls whose lease ran out; drop workers that stopped heartbeating."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for pending in [p for p in self.pending.values() if p.deadline < now and not p.future.done()]:
                log.warning("connect: %s", lapsed(pending).message)
                pending.resolve(lapsed(pending))
            silent = now - HEARTBEATS_MISSED * self.heartbeat_s - 1
            for worker in [w for w in self.conns.by_id.values() if w.last_seen < silent]:
                log.warning("connect: dropping worker %s of app %s: no heartbeat for %.0f s", worker.connection_id,
                            ", ".join(worker.app_ids), now - worker.last_seen)
                worker.status = "draining"
                self.conns.remove(worker)
                task = asyncio.ensure_future(_close(worker, 1008, "missed heartbeats: the gateway dropped it"))
                self._closing_tasks.add(task)
                task.add_done_callback(self._closing_tasks.discard)

    async def close_all(self) -> None:
        """Engine shutdown: GATEWAY_CLOSING to every worker (the SDK reconnects: to this engine once it is back)."""
        self.closing = True
        workers = list(self.conns.by_id.values())
        for worker in workers:
            worker.status = "draining"
        await asyncio.gather(*(_send_quietly(w, wire.frame(Kind.GATEWAY_CLOSING)) for w in workers))


async def _send_quietly(worker: Worker, data: bytes) -> None:
    with contextlib.suppress(Exception):
        await worker.ws.send(data)


async def _close(worker: Worker, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await worker.ws.close(code, reason)
