"""The gateway's doors: the signing key at /v0/connect/start, the session token at the socket, bad frames,
pages from other sites, and a port that is taken.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from inngest.connect._internal import connect_pb2 as pb
from tests.harness.processes import port_with_the_next_one_taken
from tests.polling import wait_for
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

SUBPROTOCOL = "v0.connect.inngest.com"


def _start(engine: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(engine.url + "/v0/connect/start", content=pb.StartRequest().SerializeToString(),
                      headers={"content-type": "application/protobuf", **(headers or {})}, timeout=5)


def _connect_message(token: str, connection_id: str) -> bytes:
    data = pb.WorkerConnectRequestData(connection_id=connection_id, instance_id="test",
                                       auth_data=pb.AuthData(session_token=token),
                                       apps=[pb.AppConfiguration(app_name="raw-app", functions=b"[]")],
                                       sdk_language="py", sdk_version="0")
    return pb.ConnectMessage(kind=pb.WORKER_CONNECT, payload=data.SerializeToString()).SerializeToString()


def _closed_with(engine: Any, frames: list[bytes | str]) -> tuple[int | None, str]:
    """Open the gateway's socket, read the hello, send ``frames``; the close code and reason the gateway gave."""
    with ws_connect(f"ws://127.0.0.1:{engine.connect_port}/v0/connect", subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        hello = pb.ConnectMessage()
        hello.ParseFromString(ws.recv(timeout=5))  # type: ignore[arg-type]
        assert hello.kind == pb.GATEWAY_HELLO
        for f in frames:
            ws.send(f)
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=5)
        assert ws.close_code is not None
        return ws.close_code, ws.close_reason or ""


def test_production_start_needs_the_signing_key(connect_engine: Any) -> None:
    engine = connect_engine("production")
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = _start(engine, headers)
        assert r.status_code == 401, r.text
        assert "signing key" in r.json()["error"] and "INNGEST_SIGNING_KEY" in r.json()["hint"]
    r = _start(engine, engine.headers)
    assert r.status_code == 200
    answer = pb.StartResponse()
    answer.ParseFromString(r.content)
    assert answer.gateway_endpoint == f"ws://127.0.0.1:{engine.connect_port}/v0/connect"
    assert answer.connection_id and len(answer.session_token) >= 32
    flush = httpx.post(engine.url + "/v0/connect/flush", content=pb.SDKResponse(request_id="x").SerializeToString())
    assert flush.status_code == 401


def test_production_socket_takes_only_a_token_it_issued_for_that_connection(connect_engine: Any) -> None:
    engine = connect_engine("production")
    code, reason = _closed_with(engine, [_connect_message("forged-token", "01ARZ3NDEKTSV4RRFFQ69G5FAV")])
    assert code == 1008 and "authentication failed" in reason
    answer = pb.StartResponse()
    answer.ParseFromString(_start(engine, engine.headers).content)
    code, reason = _closed_with(engine, [_connect_message(answer.session_token, "01ARZ3NDEKTSV4RRFFQ69G5FAV")])
    assert code == 1008 and "another connection id" in reason
    fresh = pb.StartResponse()
    fresh.ParseFromString(_start(engine, engine.headers).content)
    code, reason = _closed_with(engine, [_connect_message(fresh.session_token, "ünïcode-id")])
    assert code == 1008 and "another connection id" in reason       # not a TypeError in compare_digest
    # A token is good once: the one just refused was used up.
    code, reason = _closed_with(engine, [_connect_message(answer.session_token, answer.connection_id)])
    assert code == 1008 and "authentication failed" in reason
    assert [a["id"] for a in engine.get("/v1/apps").json()["data"]] == []


def test_malformed_frames_close_the_socket_with_a_reason(connect_engine: Any) -> None:
    engine = connect_engine("dev")
    code, reason = _closed_with(engine, [b"\xff\xff\xff\xff"])
    assert code == 1008 and "malformed frame" in reason
    code, reason = _closed_with(engine, ["hello"])
    assert code == 1008 and "binary protobuf" in reason
    hb = pb.ConnectMessage(kind=pb.WORKER_HEARTBEAT).SerializeToString()
    code, reason = _closed_with(engine, [hb])
    assert code == 1008 and "expected WORKER_CONNECT" in reason
    bad = pb.ConnectMessage(kind=pb.WORKER_CONNECT, payload=b"\x0a\xff").SerializeToString()
    code, reason = _closed_with(engine, [bad])
    assert code == 1008 and "malformed WORKER_CONNECT" in reason
    r = httpx.post(engine.url + "/v0/connect/flush", content=b"\xff\xff")
    assert r.status_code == 400 and "malformed" in r.json()["error"]
    assert engine.get("/health").status_code == 200


def test_a_page_on_another_site_cannot_open_a_worker_socket(connect_engine: Any) -> None:
    engine = connect_engine("dev")
    with pytest.raises(InvalidStatus) as err:
        ws_connect(f"ws://127.0.0.1:{engine.connect_port}/v0/connect", origin="http://evil.example")  # type: ignore[arg-type]
    assert err.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as err:
        ws_connect(f"ws://127.0.0.1:{engine.connect_port}/v0/connect",
                   additional_headers={"Host": "evil.example"})     # a second Host header
    assert err.value.response.status_code == 400
    assert _raw_upgrade(engine.connect_port, "evil.example").startswith(b"HTTP/1.1 421")   # DNS rebinding
    assert _raw_upgrade(engine.connect_port, f"127.0.0.1:{engine.connect_port}").startswith(b"HTTP/1.1 101")
    r = httpx.post(engine.url + "/v0/connect/start", content=b"", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


def _raw_upgrade(port: int, host: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET /v0/connect HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        return s.recv(200)


def test_port_plus_one_taken_runs_without_a_gateway_and_says_so(engine_factory: Any) -> None:
    with port_with_the_next_one_taken() as port:
        engine = engine_factory("dev", port=port)
        r = _start(engine)
        assert r.status_code == 503
        assert f"port {port + 1}" in r.json()["error"] and "--connect-port" in r.json()["hint"]
        wait_for(lambda: "runs without connect workers" in engine.output(), 5, "the warning in the log")
        assert "dev mode" in engine.output().splitlines()[0]      # the start line still comes first


def test_an_explicit_connect_port_that_is_taken_stops_the_start(engine_factory: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        engine = engine_factory("dev", args=("--connect-port", str(taken.getsockname()[1])), start=False)
        engine.start(wait=False)
        assert engine.proc is not None
        assert engine.proc.wait(20) == 2
        assert "the connect gateway cannot listen" in engine.output()
