"""Raw HTTP/1.1 over a socket, for what httpx will not do: announce a huge body and not send it,
stream a body past a limit and read the answer the server gave mid-way, send arbitrary Host headers."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    head: str
    body: bytes


def request(port: int, method: str, path: str, headers: dict[str, str], body: Iterable[bytes] = (),
            timeout: float = 10) -> RawResponse:
    """Send the head and ``body`` chunks as given (stop sending if the server closes), read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode("latin-1"))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for chunk in body:
                sock.sendall(chunk)
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                break
            data += more
        head_raw, _, rest = data.partition(b"\r\n\r\n")
        text = head_raw.decode("latin-1")
        length = next((int(line.split(":", 1)[1]) for line in text.split("\r\n")
                       if line.lower().startswith("content-length:")), None)
        while length is not None and len(rest) < length:
            more = sock.recv(65536)
            if not more:
                break
            rest += more
        status = int(text.split(" ", 2)[1]) if text.startswith("HTTP/") else 0
        return RawResponse(status, text, rest)


def chunked(total: int, piece: int = 1 << 20) -> Iterable[bytes]:
    """``total`` bytes of ``x`` as HTTP chunks, then the last chunk."""
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        yield f"{n:x}\r\n".encode() + b"x" * n + b"\r\n"
        sent += n
    yield b"0\r\n\r\n"
