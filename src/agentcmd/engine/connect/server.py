"""The gateway's WebSocket server: its port, its checks before the upgrade, its life with the engine's.

It listens on ``EngineConfig.connect_port`` (None: the engine's port + 1,
where the dev server and the SDK's tests expect it), path ``/v0/connect``,
served by the ``websockets`` library on the engine's own event loop (the
gateway and the executor share state without locks or threads). An explicit
port that is taken is a startup error; the automatic one logs a warning and
the engine runs without a gateway (``/v0/connect/start`` then says why, 503).
Before the upgrade: the ``Host`` allow-list and the cross-site rule of the
engine's HTTP edge (a page on another site cannot open a worker socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from functools import partial
from http import HTTPStatus
from typing import Any

from agentcmd.engine.connect import session
from agentcmd.engine.connect.gateway import Gateway
from agentcmd.engine.connect.wire import SUBPROTOCOL
from agentcmd.engine.listener import listen
from agentcmd.errors import PortInUseError
from agentcmd.httpedge.browser import cross_site_reason
from agentcmd.httpedge.hosts import HostPolicy
from agentcmd.httpedge.limits import SDK_MAX

log = logging.getLogger("agentcmd.engine.connect")
_ws_log = logging.getLogger("agentcmd.engine.connect.ws")   # the library's own: one line per socket is noise
_ws_log.setLevel(logging.WARNING)
PATH = "/v0/connect"


class GatewayServer:
    def __init__(self, gateway: Gateway, sock: socket.socket | None, host: str, hosts: HostPolicy) -> None:
        self.gateway = gateway
        self.sock = sock
        self.hosts = hosts
        self._server: Any = None
        self._reaper: asyncio.Task[None] | None = None
        gateway.host = host
        if sock is not None:
            gateway.port = sock.getsockname()[1]   # known once bound: /v0/connect/start may answer at once

    async def start(self) -> None:
        if self.sock is None:
            log.warning("%s", self.gateway.unavailable)
            return
        from websockets.asyncio.server import serve

        self._server = await serve(partial(session.handle, self.gateway), sock=self.sock,
                                   select_subprotocol=_subprotocol, compression=None, max_size=SDK_MAX,
                                   process_request=self._check, server_header=None, ping_interval=None,
                                   logger=_ws_log)
        self._reaper = asyncio.create_task(self.gateway.reap(), name="agentcmd-connect-reaper")

    def _check(self, connection: Any, request: Any) -> Any:
        """Before the upgrade: the path, the Host allow-list, no page from another site."""
        path = request.path.split("?", 1)[0]
        if path != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"the connect gateway answers on {PATH} only\n")
        hosts = request.headers.get_all("Host")
        if len(hosts) != 1:
            return connection.respond(HTTPStatus.BAD_REQUEST, "send exactly one Host header\n")
        host = hosts[0]
        if not self.hosts.allows(host):
            return connection.respond(HTTPStatus.MISDIRECTED_REQUEST,
                                      f"the connect gateway does not answer to the host name {host[:100]!r}\n")
        headers = {"host": host}
        for name in ("origin", "sec-fetch-site"):
            values = request.headers.get_all(name)
            if values:
                headers[name] = values[0] if len(values) == 1 else "null"   # two Origins: judged as no origin
        why = cross_site_reason(headers, self.hosts)
        if why is not None:
            log.warning("connect: refused a WebSocket from a page on another site (%s)", why)
            return connection.respond(HTTPStatus.FORBIDDEN, f"WebSocket from a page on another site refused ({why})\n")
        return None

    async def stop(self) -> None:
        """GATEWAY_CLOSING to every worker, then close the sockets."""
        await self.gateway.close_all()
        if self._reaper is not None:
            self._reaper.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        if self.sock is not None:
            self.sock.close()


def _subprotocol(connection: Any, offered: Any) -> Any:
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


def gateway_socket(host: str, engine_port: int, connect_port: int | None) -> tuple[socket.socket | None, str]:
    """Bind the gateway's port: (socket, "") or, when the automatic port is taken, (None, why)."""
    port = engine_port + 1 if connect_port is None else connect_port
    try:
        return listen(host, port, 512), ""
    except OSError as exc:
        taken = exc.errno in (errno.EADDRINUSE, errno.EACCES)
        if connect_port is not None or not taken:
            raise PortInUseError(f"the connect gateway cannot listen on {host}:{port}: {exc.strerror}",
                                 f"stop whatever uses port {port}, pass another --connect-port, or --no-connect "
                                 "to run without connect workers") from None
        # Not the OS's "Address already in use": supervisors and tests wait for "ready in " in this output.
        reason = "taken" if exc.errno == errno.EADDRINUSE else "not open to this user"
        why = (f"the connect gateway's port {port} (the engine's port + 1) is {reason}; the engine "
               "runs without connect workers (pass --connect-port N to choose another port)")
        return None, why      # logged by GatewayServer.start, after the engine's start line
