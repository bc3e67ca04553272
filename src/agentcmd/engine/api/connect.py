"""The connect gateway's HTTP routes on the engine's main port (the SDK's REST half of connect).

* ``POST /v0/connect/start`` (protobuf StartRequest -> StartResponse): a
  connection id, a session token for it and the gateway's WebSocket URL.
  Production: ``Authorization: Bearer <signing key>`` (raw or hashed, as
  the SDK sends it); dev: no auth.
* ``POST /v0/connect/flush`` (protobuf SDKResponse): a reply the worker
  could not send over its socket; answers FlushResponse.
* ``GET /v0/connect/envs/{env}/conns``: the connected workers, as the dev
  server lists them (``{"data": [...]}``).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentcmd.engine.connect import wire
from agentcmd.engine.connect.wire import MalformedMessage, pb
from agentcmd.httpedge.hosts import split_host

if TYPE_CHECKING:
    from agentcmd.engine.commands import Commands
    from agentcmd.engine.connect.gateway import Gateway

PROTOBUF = "application/protobuf"


def _refuse(status: int, error: str, code: str, hint: str) -> JSONResponse:
    return JSONResponse({"error": error, "code": code, "hint": hint}, status)


def _unauthorized() -> JSONResponse:
    return _refuse(401, "unauthorized: missing or wrong signing key in the Authorization header", "unauthorized",
                   "a production engine takes connect workers with its signing key: set INNGEST_SIGNING_KEY on "
                   "the worker to the engine's key (the SDK sends it as a bearer)")


def _gateway(commands: Commands, request: Request) -> Gateway | JSONResponse:
    """The gateway a worker's request may use, or the refusal: the key first, then whether connect is up."""
    if not commands.authorized(request):
        return _unauthorized()
    gateway = commands.connect_gateway()
    if gateway is None:
        return _refuse(503, "this engine runs without the connect gateway (started with --no-connect)",
                       "connect_off", "restart the engine without --no-connect, or serve the app over HTTP")
    if gateway.port is None:
        return _refuse(503, gateway.unavailable, "connect_unavailable",
                       "restart the engine with --connect-port N on a free port")
    return gateway


async def start(commands: Commands, request: Request) -> Response:
    gateway = _gateway(commands, request)
    if isinstance(gateway, JSONResponse):
        return gateway
    try:
        wire.parse(pb.StartRequest, await request.body(), "StartRequest")
    except MalformedMessage as exc:
        return _refuse(400, str(exc), "invalid_input", "send the SDK's protobuf StartRequest")
    connection_id, token = gateway.issue()
    parsed = split_host(request.headers.get("host", ""))
    host = parsed[0] if parsed is not None else gateway.host
    host = f"[{host}]" if ":" in host else host
    answer = pb.StartResponse(connection_id=connection_id, gateway_endpoint=f"ws://{host}:{gateway.port}/v0/connect",
                              gateway_group="agentcmd", session_token=token, sync_token="")
    return Response(answer.SerializeToString(), media_type=PROTOBUF)


async def flush(commands: Commands, request: Request) -> Response:
    gateway = _gateway(commands, request)
    if isinstance(gateway, JSONResponse):
        return gateway
    body = await request.body()
    try:
        if not body:
            raise MalformedMessage("empty body: /v0/connect/flush takes a protobuf SDKResponse")
        reply = wire.parse(pb.SDKResponse, body, "flushed reply")
    except MalformedMessage as exc:
        return _refuse(400, str(exc), "invalid_input", "send the SDK's protobuf SDKResponse")
    gateway.replied(reply)
    return Response(pb.FlushResponse(request_id=reply.request_id).SerializeToString(), media_type=PROTOBUF)


async def conns(commands: Commands, request: Request) -> Response:
    if not commands.authorized(request):
        return _unauthorized()
    data = [{"id": w.connection_id, "instance_id": w.instance_id, "status": w.status.upper(),
             "app_ids": list(w.app_ids), "address": w.address, "connected_at": w.connected_at_ms,
             "last_heartbeat_at": w.last_heartbeat_ms, "in_flight": w.in_flight, "capacity": w.capacity,
             "sdk": w.sdk} for w in commands.connect_workers()]
    return JSONResponse({"data": data})


def routes(commands: Commands) -> list[Route]:
    return [Route("/v0/connect/start", partial(start, commands), methods=["POST"]),
            Route("/v0/connect/flush", partial(flush, commands), methods=["POST"]),
            Route("/v0/connect/envs/{env}/conns", partial(conns, commands), methods=["GET"])]
