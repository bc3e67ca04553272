"""A real HTTP server that records what is POSTed to it: the target of notification tests."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    """A real HTTP server the notifications go to; records every POST; answers ``status``."""

    status: int = 200
    posts: list[dict[str, Any]] = field(default_factory=list)
    server: HTTPServer | None = None

    def start(self, sock: socket.socket | None = None) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append({"path": self.path, "body": json.loads(body or b"null"), "at": time.monotonic(),
                                       "wall": time.time()})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        if sock is None:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        else:   # a socket bound earlier (it refused connections until now)
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
            self.server.socket.close()
            self.server.socket = sock
            self.server.server_address = sock.getsockname()
            self.server.server_activate()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def bodies(self, prefix: str) -> list[dict[str, Any]]:
        return [p["body"] for p in list(self.posts) if p["path"].startswith(prefix)]


