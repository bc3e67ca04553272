"""An ASGI app served by uvicorn in a thread, on an ephemeral port, for tests that talk real HTTP to it.

``LiveServer(app, bind)`` listens on ``bind`` (127.0.0.1 unless a test needs
a wildcard bind) and its ``url`` always goes through 127.0.0.1. The defaults
are the real launchers' (no proxy headers, no access log); ``lifespan="off"``
serves a bare router as the engine does.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class LiveServer:
    """uvicorn in a daemon thread on ``bind``:<ephemeral>; ``start()`` returns once it accepts."""

    def __init__(self, app: Any, bind: str = "127.0.0.1", *, lifespan: str = "on", proxy_headers: bool = False,
                 access_log: bool = False) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((bind, 0))
        self.bind = bind
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan=lifespan, log_level="warning",
                                                    access_log=access_log, proxy_headers=proxy_headers))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout: float = 10) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the test server on {self.url} did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
