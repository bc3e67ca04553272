"""Wiring the connect gateway into an engine: its port, its hooks into the engine, its metrics.

Called by ``serve.py`` once the engine's own port is bound (the gateway's
default port is that port + 1) and ``engine.open()`` has built the parts the
gateway hooks into. A module of its own: it needs the whole ``Engine``,
which imports the gateway's server, so it cannot live beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentcmd.engine.connect.gateway import Gateway, Hooks
from agentcmd.engine.connect.server import GatewayServer, gateway_socket

if TYPE_CHECKING:
    from agentcmd.engine.app import Engine


def attach(engine: Engine, host: str, engine_port: int) -> None:
    """Give ``engine`` its gateway (``engine.connect``) when connect is on; call after ``engine.open()``."""
    config = engine.config
    if not config.connect:
        return
    sock, why = gateway_socket(host, engine_port, config.connect_port)
    from agentcmd.engine.edge import engine_edge_policy
    from agentcmd.engine.store import queue

    store = engine.store

    async def extend(item_id: int, until: int) -> None:
        await store.write(lambda c: queue.extend_lease_txn(c, item_id, until))

    hooks = Hooks(register=engine.commands.register_app, wake=engine.worker.wake, extend_queue_lease=extend,
                  queue_lease_ms=engine.executor.lease_ms)
    gateway = Gateway(hooks, production=config.production)
    if why:
        gateway.unavailable = why
    engine.connect = gateway
    engine.driver.connect = gateway
    from agentcmd.engine.connect.metrics import ConnectCollector

    engine.metrics.registry.register(ConnectCollector(gateway))
    engine.connect_server = GatewayServer(gateway, sock, host, engine_edge_policy(config).hosts)
