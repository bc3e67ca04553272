"""The gateway against a hand-written worker (raw protobuf frames): what a reply maps to, and flush.

A reply the worker could not send over its socket arrives by
``POST /v0/connect/flush`` and answers the call; an ERROR reply with
``no_retry`` fails the run at once, as ``X-Inngest-No-Retry`` does over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from inngest.connect._internal import connect_pb2 as pb
from tests.harness.engine import runs_for_event, send_event, wait_for_run_status
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

APP = "raw-app"
FUNCTIONS = [{"id": f"{APP}-fn", "name": "fn", "triggers": [{"event": "raw/go"}],
              "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": 3},
                                 "runtime": {"type": "http", "url": f"wss://connect?fnId={APP}-fn&stepId=step"}}}}]


def _msg(kind: int, payload: Any = None) -> bytes:
    m = pb.ConnectMessage(kind=kind)  # type: ignore[arg-type]
    if payload is not None:
        m.payload = payload.SerializeToString()
    return m.SerializeToString()


def _recv(ws: ClientConnection, kind: int) -> Any:
    while True:
        m = pb.ConnectMessage()
        m.ParseFromString(ws.recv(timeout=10))  # type: ignore[arg-type]
        if m.kind == kind:
            return m


def _raw_worker(engine: Any) -> ClientConnection:
    start = pb.StartResponse()
    start.ParseFromString(httpx.post(engine.url + "/v0/connect/start", content=b"", timeout=5).content)
    ws = ws_connect(start.gateway_endpoint, subprotocols=["v0.connect.inngest.com"], legacy=True)  # type: ignore[list-item]
    _recv(ws, pb.GATEWAY_HELLO)
    ws.send(_msg(pb.WORKER_CONNECT, pb.WorkerConnectRequestData(
        connection_id=start.connection_id, instance_id="raw", auth_data=pb.AuthData(session_token=start.session_token),
        apps=[pb.AppConfiguration(app_name=APP, functions=json.dumps(FUNCTIONS).encode())],
        sdk_language="raw", sdk_version="1")))
    ready = pb.GatewayConnectionReadyData()
    ready.ParseFromString(_recv(ws, pb.GATEWAY_CONNECTION_READY).payload)
    assert (ready.heartbeat_interval, ready.extend_lease_interval) == ("10s", "5s")
    return ws


def _request(ws: ClientConnection) -> Any:
    req = pb.GatewayExecutorRequestData()
    req.ParseFromString(_recv(ws, pb.GATEWAY_EXECUTOR_REQUEST).payload)
    ws.send(_msg(pb.WORKER_REQUEST_ACK, pb.WorkerRequestAckData(request_id=req.request_id)))
    return req


def test_a_reply_flushed_over_http_answers_the_call(connect_engine: Any) -> None:
    engine = connect_engine("dev")
    ws = _raw_worker(engine)
    run_id = runs_for_event(engine, send_event(engine, "raw/go", {"n": 1}))[0]
    req = _request(ws)
    assert (req.app_name, req.function_slug, req.step_id, req.run_id) == (APP, f"{APP}-fn", "step", run_id)
    body = json.loads(req.request_payload)
    assert body["ctx"]["run_id"] == run_id and body["event"]["data"] == {"n": 1}   # the HTTP path's JSON body
    ws.close()      # the socket is gone before the reply: the worker flushes it over HTTP
    reply = pb.SDKResponse(request_id=req.request_id, status=pb.SDKResponseStatus.DONE, body=b'"flushed"',
                           sdk_version="raw:v1")
    r = httpx.post(engine.url + "/v0/connect/flush", content=reply.SerializeToString(), timeout=5)
    assert r.status_code == 200
    answer = pb.FlushResponse()
    answer.ParseFromString(r.content)
    assert answer.request_id == req.request_id
    run = wait_for_run_status(engine, run_id, "Completed")
    assert run["output"] == "flushed"


def test_an_error_reply_with_no_retry_fails_the_run_at_once(connect_engine: Any) -> None:
    engine = connect_engine("dev")
    ws = _raw_worker(engine)
    run_id = runs_for_event(engine, send_event(engine, "raw/go"))[0]
    req = _request(ws)
    error = {"name": "Boom", "message": "no point retrying"}
    ws.send(_msg(pb.WORKER_REPLY, pb.SDKResponse(request_id=req.request_id, status=pb.SDKResponseStatus.ERROR,
                                                 body=json.dumps(error).encode(), no_retry=True, sdk_version="raw:v1")))
    ack = pb.WorkerReplyAckData()
    ack.ParseFromString(_recv(ws, pb.WORKER_REPLY_ACK).payload)
    assert ack.request_id == req.request_id
    run = wait_for_run_status(engine, run_id, "Failed")
    output = run["output"] if isinstance(run["output"], dict) else json.loads(run["output"])
    assert run["attempt"] == 0 and output["message"] == "no point retrying"
    ws.close()


def test_a_lease_extension_renews_and_an_unknown_one_is_refused(connect_engine: Any) -> None:
    engine = connect_engine("dev")
    ws = _raw_worker(engine)
    runs_for_event(engine, send_event(engine, "raw/go"))
    req = _request(ws)
    ws.send(_msg(pb.WORKER_REQUEST_EXTEND_LEASE, pb.WorkerRequestExtendLeaseData(request_id=req.request_id,
                                                                                lease_id=req.lease_id)))
    ack = pb.WorkerRequestExtendLeaseAckData()
    ack.ParseFromString(_recv(ws, pb.WORKER_REQUEST_EXTEND_LEASE_ACK).payload)
    assert ack.request_id == req.request_id and ack.new_lease_id and ack.new_lease_id != req.lease_id
    # The old lease id is spent: a second extension with it is refused (no new lease id).
    ws.send(_msg(pb.WORKER_REQUEST_EXTEND_LEASE, pb.WorkerRequestExtendLeaseData(request_id=req.request_id,
                                                                                lease_id=req.lease_id)))
    nack = pb.WorkerRequestExtendLeaseAckData()
    nack.ParseFromString(_recv(ws, pb.WORKER_REQUEST_EXTEND_LEASE_ACK).payload)
    assert not nack.HasField("new_lease_id")
    ws.close()


def test_engine_shutdown_sends_gateway_closing(connect_engine: Any) -> None:
    """SIGTERM: every worker hears GATEWAY_CLOSING (the SDK then reconnects once the engine is back)."""
    import signal

    engine = connect_engine("dev")
    ws = _raw_worker(engine)
    assert engine.proc is not None
    engine.proc.send_signal(signal.SIGTERM)
    _recv(ws, pb.GATEWAY_CLOSING)
    assert engine.proc.wait(15) == 0
    ws.close()
