"""A listening TCP socket for one of the engine's ports (its HTTP port, the connect gateway's).

Bound before the servers start, so that a port in use is found (and said)
before anything runs; each caller words its own error, since the fix differs
(``--port`` against ``--connect-port``, or a warning for the automatic one).
"""

from __future__ import annotations

import socket


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """Bind ``host:port`` (IPv6 when the host has a colon) and listen; raises the OSError of a failed bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(backlog)
    return sock
