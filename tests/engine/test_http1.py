"""engine.http1: the hot-path HTTP/1.1 client, against small real servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from agentcmd.engine.http1 import Client, ClosedBeforeHeadError, StaleConnectionError

_OPEN: list[asyncio.BaseTransport] = []


class _Server(asyncio.Protocol):
    """Answers each request with ``reply(n)``; optionally closes after answering."""

    def __init__(self, reply: Callable[[int], bytes], close_after: bool, log: list[bytes]) -> None:
        self.reply, self.close_after, self.log, self.buf = reply, close_after, log, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.t = transport
        _OPEN.append(transport)
        self.log.append(b"CONNECT")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            if len(rest) < length:
                return
            self.buf = rest[length:]
            self.log.append(head.split(b"\r\n")[0] + b" " + rest[:length])
            self.t.write(self.reply(len(self.log)))
            if self.close_after:
                self.t.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[tuple[str, list[bytes]]]]]:
    servers: list[asyncio.AbstractServer] = []

    async def start(reply: Callable[[int], bytes], close_after: bool = False) -> tuple[str, list[bytes]]:
        log: list[bytes] = []
        srv = await asyncio.get_running_loop().create_server(lambda: _Server(reply, close_after, log), "127.0.0.1", 0)
        servers.append(srv)
        return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}", log

    yield start  # type: ignore[misc]
    for srv in servers:
        srv.close()
        await srv.wait_closed()
    for t in _OPEN:
        t.close()
    _OPEN.clear()
    await asyncio.sleep(0)


def _ok(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nX-Inngest-Sdk: py\r\n{extra}\r\n").encode() + body


async def test_keep_alive_reuses_one_connection(serve: object) -> None:
    url, log = await serve(lambda n: _ok(b'{"n": %d}' % n))  # type: ignore[operator]
    client = Client()
    for i in range(3):
        r = await client.post(f"{url}/api?fnId=a&stepId=s{i}", b"{}", {"Content-Type": "application/json"}, 5)
        assert r.status == 200 and r.headers["x-inngest-sdk"] == "py"
    assert log.count(b"CONNECT") == 1
    assert log[1].startswith(b"POST /api?fnId=a&stepId=s0 HTTP/1.1")
    client.close()


async def test_chunked_answers_are_read_to_the_end(serve: object) -> None:
    chunked = b"HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[1, 2\r\n2\r\n ]\r\n0\r\n\r\n"
    url, _ = await serve(lambda n: chunked)  # type: ignore[operator]
    client = Client()
    r = await client.post(url + "/", b"{}", {}, 5)
    assert (r.status, r.body) == (206, b"[1, 2 ]")
    client.close()


async def test_a_pooled_connection_closed_by_the_server_is_retried_on_a_new_one(serve: object) -> None:
    url, log = await serve(lambda n: _ok(b"ok"), close_after=True)  # type: ignore[operator]
    client = Client()
    assert (await client.post(url + "/", b"1", {}, 5)).body == b"ok"
    await asyncio.sleep(0.05)          # let the close reach us... or not: both paths must work
    assert (await client.post(url + "/", b"2", {}, 5)).body == b"ok"
    assert log.count(b"CONNECT") == 2
    client.close()


async def test_connection_close_header_is_honoured(serve: object) -> None:
    url, log = await serve(lambda n: _ok(b"x", extra="Connection: close\r\n"))  # type: ignore[operator]
    client = Client()
    await client.post(url + "/", b"1", {}, 5)
    await client.post(url + "/", b"2", {}, 5)
    assert log.count(b"CONNECT") == 2
    client.close()


async def test_timeouts_and_refused_connections_raise() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()

    srv = await asyncio.start_server(never, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    client = Client()
    with pytest.raises(TimeoutError):
        await client.post(f"http://127.0.0.1:{port}/", b"{}", {}, 0.2)
    for w in writers:
        w.close()
    srv.close()
    await srv.wait_closed()
    with pytest.raises(OSError):
        await client.post(f"http://127.0.0.1:{port}/", b"{}", {}, 2)
    client.close()


@pytest.mark.parametrize(("sent", "error", "words"), [
    (b"", StaleConnectionError, "closed before the response started"),
    (b"HTTP/1.1 200 OK\r\nX-Inngest-Sdk: py\r\n", ClosedBeforeHeadError, "closed mid-headers"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12", ConnectionError, "closed mid-response"),
])
async def test_where_a_connection_breaks_off_is_told_apart(serve: object, sent: bytes, error: type[Exception],
                                                           words: str) -> None:
    """Before the head is complete the app did not answer (an interruption for the driver); after it, it did."""
    url, _ = await serve(lambda n: sent, close_after=True)  # type: ignore[operator]
    client = Client()
    with pytest.raises(ConnectionError) as caught:
        await client.post(url + "/", b"{}", {}, 5)
    assert type(caught.value) is error and words in str(caught.value)
    client.close()
