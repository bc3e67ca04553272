"""The connect protocol's messages (the SDK's ``connect.proto``) and the few conversions the gateway needs.

The generated protobuf module ships with the SDK (``inngest[connect]``, pinned
to ``<0.6`` in pyproject.toml): the engine speaks exactly the messages of the
SDK version it is tested with, instead of a second copy that could drift. It
is loaded from its file (``_load_pb``), not through ``import inngest``: the
SDK package's import costs the engine's start ~0.5 s and prints a pydantic
deprecation warning, and the engine needs none of it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]

from agentcmd.engine.protocol import SDKResponse, parse_response

_PB_MODULE = "inngest.connect._internal.connect_pb2"


def _load_pb() -> Any:
    """The SDK's generated ``connect_pb2``, without importing the ``inngest`` package itself."""
    import importlib.util
    import sys
    from pathlib import Path

    if _PB_MODULE in sys.modules:
        return sys.modules[_PB_MODULE]
    sdk = importlib.util.find_spec("inngest")
    if sdk is None or sdk.origin is None:
        raise ImportError("the inngest SDK (inngest[connect]) is not installed; reinstall agentcmd")
    spec = importlib.util.spec_from_file_location(_PB_MODULE, Path(sdk.origin).parent / "connect" / "_internal"
                                                  / "connect_pb2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[_PB_MODULE] = module     # the SDK's own import (tests, a worker in-process) finds this one
    return module


pb = _load_pb()
SCHEME = "connect://"
SUBPROTOCOL = "v0.connect.inngest.com"
# What GATEWAY_CONNECTION_READY tells the worker (the SDK reads whole seconds only).
HEARTBEAT_INTERVAL_S = 10
EXTEND_LEASE_INTERVAL_S = 5

Kind = pb.GatewayMessageType


class MalformedMessage(ValueError):
    """A frame that is not the protobuf message it should be; the text is the WebSocket close reason."""


def frame(kind: int, payload: Message | None = None) -> bytes:
    """One ConnectMessage, serialized."""
    msg = pb.ConnectMessage(kind=kind)
    if payload is not None:
        msg.payload = payload.SerializeToString()
    return bytes(msg.SerializeToString())


def parse(cls: type[Any], data: bytes, what: str) -> Any:
    """``cls`` parsed from ``data``; ``MalformedMessage`` naming ``what`` if it does not parse."""
    msg = cls()
    try:
        msg.ParseFromString(data)
    except (DecodeError, ValueError, TypeError) as exc:
        raise MalformedMessage(f"malformed {what}: not a protobuf {cls.__name__} ({exc})"[:120]) from None
    return msg


def app_url(app_id: str) -> str:
    """Where a connect app's functions point (``apps.url``, ``functions.url``): ``connect://<app id>``."""
    return SCHEME + quote(app_id, safe="")


def function_url(app_id: str, slug: str) -> str:
    return f"{app_url(app_id)}?fnId={quote(slug, safe='')}&stepId=step"


@lru_cache(maxsize=4096)
def split_call_url(url: str) -> tuple[str, str, str]:
    """``connect://app?fnId=..&stepId=..`` -> (app id, function slug, step id).

    Cached: every call of a run parses the same few URLs (4 µs each uncached).
    """
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return unquote(parts.netloc), query.get("fnId", ""), query.get("stepId", "step")


_STATUS = {pb.SDKResponseStatus.DONE: 200, pb.SDKResponseStatus.NOT_COMPLETED: 206,
           pb.SDKResponseStatus.ERROR: 500}


def to_response(reply: Any, now_ms: int) -> SDKResponse:
    """A WORKER_REPLY's SDKResponse as the HTTP path would have parsed it (the Go connect driver's mapping).

    DONE is HTTP 200, NOT_COMPLETED 206, ERROR 500; ``no_retry`` and
    ``retry_after`` become the headers ``parse_response`` reads, and the SDK
    version its ``x-inngest-sdk`` header (every connect reply comes from the SDK).
    """
    headers = {"x-inngest-sdk": reply.sdk_version or "connect",
               "x-inngest-req-version": str(reply.request_version)}
    if reply.no_retry:
        headers["x-inngest-no-retry"] = "true"
    if reply.HasField("retry_after") and reply.retry_after:
        headers["retry-after"] = reply.retry_after
    return parse_response(_STATUS.get(reply.status, 500), headers, bytes(reply.body), now_ms)


def connect_functions(app_id: str, raw: bytes) -> list[dict[str, Any]]:
    """An AppConfiguration's functions JSON, each step's runtime URL pointed at ``connect://<app id>``.

    The SDK sends ``wss://connect`` URLs, the same for every app: the engine
    stores its own, so that a call knows which app's workers to ask.
    """
    import json

    try:
        functions = json.loads(raw or b"[]")
    except ValueError as exc:
        raise MalformedMessage(f"app {app_id!r}: its functions are not JSON ({exc})"[:120]) from None
    if not isinstance(functions, list):
        raise MalformedMessage(f"app {app_id!r}: its functions are not a JSON list"[:120])
    for fn in functions:
        if not isinstance(fn, dict):
            continue
        for step in (fn.get("steps") or {}).values():
            if isinstance(step, dict) and isinstance(step.get("runtime"), dict):
                step["runtime"]["url"] = function_url(app_id, str(fn.get("id") or ""))
    return functions
