"""The engine <-> SDK wire protocol: opcodes, response parsing, durations. Pure: no I/O.

``parse_response(status, headers, body, now_ms)`` turns one HTTP answer of
the SDK into an ``SDKResponse`` the executor can act on without looking at
HTTP again. The rules (reference: ../shared/reference/inngest-wire-protocol.md
§5) that are easy to get wrong live here, table-tested in
tests/engine/test_protocol.py:

* a response without ``x-inngest-sdk`` did not come from the SDK (a proxy,
  an HTML error page, the SDK's own 401): an *internal* error, retried;
* 206 carries a JSON list of ops (a single object or ``null`` is accepted);
* 201 is a streamed answer wrapping the real status, headers and body;
* ``x-inngest-no-retry: true`` makes any error final, also on a 206;
* ``retry-after`` is an ISO time or seconds, clamped to [1 s, 24 h].
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

MAX_RETRY_AFTER_MS = 24 * 3600 * 1000
MIN_RETRY_AFTER_MS = 1000
# The app's "I am shutting down, ask again later" (docs/engine.md, interrupted calls): a 503 with this header is
# an interruption, not a failed attempt, and is the only SDK answer taken unsigned in production.
INTERRUPTED_HEADER = "x-agentcmd-interrupted"


class Opcode(StrEnum):
    """Op names exactly as they appear on the wire."""

    STEP_RUN = "StepRun"
    STEP = "Step"
    STEP_ERROR = "StepError"
    STEP_FAILED = "StepFailed"
    STEP_PLANNED = "StepPlanned"
    STEP_NOT_FOUND = "StepNotFound"
    SLEEP = "Sleep"
    WAIT_FOR_EVENT = "WaitForEvent"
    WAIT_FOR_SIGNAL = "WaitForSignal"
    INVOKE_FUNCTION = "InvokeFunction"
    AI_GATEWAY = "AIGateway"
    GATEWAY = "Gateway"
    RUN_COMPLETE = "RunComplete"
    DISCOVERY_REQUEST = "DiscoveryRequest"
    NONE = "None"


class ResponseKind(StrEnum):
    DONE = "done"                  # 200: the function returned; body is the output
    OPS = "ops"                    # 206: steps to act on
    FUNCTION_ERROR = "function_error"  # the user's code raised (SDK error body)
    INTERNAL_ERROR = "internal_error"  # not the user's fault: unreachable, not an SDK, bad body
    INTERRUPTED = "interrupted"    # no answer at all, or the app's 503-interrupted: not an attempt (interrupt.py)


@dataclass(frozen=True)
class Op:
    """One element of a 206 body."""

    id: str
    op: str
    name: str = ""
    display_name: str = ""
    opts: Mapping[str, Any] | None = None
    data: Any = None
    error: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        """The human name of the step (the user's step id)."""
        return self.display_name or self.name or self.id


@dataclass(frozen=True)
class SDKResponse:
    kind: ResponseKind
    status: int
    body: str = ""                       # raw body text (the run output on DONE / final errors)
    ops: tuple[Op, ...] = ()
    retriable: bool = True
    retry_at_ms: int | None = None       # from retry-after
    error: Mapping[str, Any] | None = None   # parsed SDK error body, if any
    message: str = ""                    # one line for logs and the run's error
    headers: Mapping[str, str] = field(default_factory=dict)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def parse_response(status: int, headers: Mapping[str, str], body: bytes, now_ms: int) -> SDKResponse:
    """Classify one SDK answer; never raises."""
    h = _lower(headers)
    text = body.decode("utf-8", errors="replace")
    if status == 201:
        return _parse_streamed(text, h, now_ms)
    if status == 503 and INTERRUPTED_HEADER in h:
        reason = " ".join(h[INTERRUPTED_HEADER].split())[:200] or "interrupted"
        return SDKResponse(ResponseKind.INTERRUPTED, status, text, message=f"the app answered 503 interrupted: "
                           f"{reason}", headers=h)
    no_retry = h.get("x-inngest-no-retry", "").strip().lower() == "true"
    retry_at = parse_retry_after(h.get("retry-after"), now_ms)
    from_sdk = "x-inngest-sdk" in h
    if not from_sdk:
        snippet = " ".join(text.split())[:120]
        why = ("the SDK rejected the request signature (check the signing key on both sides)"
               if status == 401 else
               f"HTTP {status} without an x-inngest-sdk header: the answer did not come from the Inngest SDK "
               "(check the function URL; or the app failed before the SDK answered, or a proxy answered for it)")
        return SDKResponse(ResponseKind.INTERNAL_ERROR, status, text, retriable=not no_retry,
                           retry_at_ms=retry_at, message=f"{why}: {snippet}" if snippet else why,
                           headers=h)
    if status == 200:
        return SDKResponse(ResponseKind.DONE, status, text if text.strip() else "null", headers=h)
    if status == 206:
        try:
            raw = json.loads(text) if text.strip() else []
        except ValueError:
            return SDKResponse(ResponseKind.INTERNAL_ERROR, status, text, message="206 body is not JSON",
                               headers=h)
        try:
            ops = parse_ops(raw)
        except ValueError as exc:
            return SDKResponse(ResponseKind.INTERNAL_ERROR, status, text, message=str(exc), headers=h)
        return SDKResponse(ResponseKind.OPS, status, text, ops=ops, retriable=not no_retry,
                           retry_at_ms=retry_at, headers=h)
    if 200 <= status < 300:
        return SDKResponse(ResponseKind.INTERNAL_ERROR, status, text,
                           message=f"unexpected HTTP {status} from the SDK", headers=h)
    error: Mapping[str, Any] | None = None
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            error = parsed
    except ValueError:
        pass
    message = (str(error.get("message") or error.get("name") or "")
               if error is not None else " ".join(text.split())[:200])
    return SDKResponse(ResponseKind.FUNCTION_ERROR, status, text, retriable=not no_retry,
                       retry_at_ms=retry_at, error=error,
                       message=f"HTTP {status}: {message}" if message else f"HTTP {status}", headers=h)


def _parse_streamed(text: str, headers: dict[str, str], now_ms: int) -> SDKResponse:
    try:
        wrapped = json.loads(text.strip())
        inner_status = int(wrapped["status"])
        inner_headers = {**headers, **{str(k): str(v) for k, v in (wrapped.get("headers") or {}).items()}}
        inner_body = wrapped.get("body")
        raw = inner_body if isinstance(inner_body, str) else json.dumps(inner_body)
    except (ValueError, KeyError, TypeError, AttributeError):
        return SDKResponse(ResponseKind.INTERNAL_ERROR, 201, text, message="malformed streamed (201) response",
                           headers=headers)
    return parse_response(inner_status, inner_headers, raw.encode(), now_ms)


def parse_ops(raw: Any) -> tuple[Op, ...]:
    """A 206 body -> ops. Accepts a list, one op object, or null."""
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    ops: list[Op] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("op"), str):
            raise ValueError(f"206 element is not an op object: {str(item)[:80]}")
        if item["op"] in (Opcode.NONE, ""):
            continue
        opts = item.get("opts")
        err = item.get("error")
        ops.append(Op(
            id=str(item.get("id") or ""),
            op=item["op"],
            name=str(item.get("name") or ""),
            display_name=str(item.get("displayName") or item.get("display_name") or ""),
            opts=opts if isinstance(opts, dict) else None,
            data=item.get("data"),
            error=err if isinstance(err, dict) else None,
        ))
    # WaitForEvent first, as the Go executor does: registering a pause must not
    # race a discovery that the other ops trigger.
    ops.sort(key=lambda o: 0 if o.op == Opcode.WAIT_FOR_EVENT else 1)
    return tuple(ops)


def step_memo_data(op: Op) -> Any:
    """The memo to store for a successful StepRun/Step: always ``{"data": ...}``.

    The legacy ``Step`` op may already carry ``{"data": x}``; it is not wrapped twice.
    """
    data = op.data
    if op.op == Opcode.STEP and isinstance(data, dict) and set(data) <= {"data", "error"} and data:
        return data
    return {"data": data}


def error_memo(error: Mapping[str, Any] | None) -> dict[str, Any]:
    """A failure memo the SDK decodes as an error (needs string name and message)."""
    err = dict(error or {})
    err.setdefault("name", "Error")
    err.setdefault("message", "step failed")
    err["name"] = str(err["name"])
    err["message"] = str(err["message"])
    return {"error": err}


# -- canonical JSON ------------------------------------------------------------------------

_MAX_SAFE_INT = 2**53


def _plain(value: Any) -> bool:
    """True if ``json.dumps(sort_keys=True)`` already produces RFC 8785 output for ``value``.

    It does unless there are floats (ES6 number formatting differs), huge ints,
    or non-ASCII object keys (JCS sorts by UTF-16 code units, Python by code points).
    """
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT < value < _MAX_SAFE_INT
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def canonical(value: Any) -> str:
    """RFC 8785 (JCS) text of ``value``: what the SDK re-computes to check our signature.

    The C ``json`` encoder when that is already canonical, else the SDK's own ``jcs``.
    """
    if _plain(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    import jcs  # type: ignore[import-untyped]

    return bytes(jcs.canonicalize(value)).decode("utf-8")


# -- time ------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|w|d|h|m|s)")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0,
            "d": 86_400_000.0, "w": 604_800_000.0}


def parse_duration_ms(text: str) -> int:
    """Go-style duration with ``d`` and ``w``: ``90s``, ``1h30m``, ``2w``, ``500ms``, ``1.5h``.

    Raises ValueError on anything else.
    """
    s = text.strip().lower()
    if not s:
        raise ValueError("empty duration")
    if s.isdigit():
        return int(s) * 1000
    pos = 0
    total = 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"invalid duration {text!r}")
    return int(total)


def parse_time_ms(text: str) -> int:
    """RFC 3339 / ISO 8601 instant -> epoch ms (naive times are UTC)."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_retry_after(value: str | None, now_ms: int) -> int | None:
    """``retry-after`` (ISO time or seconds) -> absolute ms, clamped to [1 s, 24 h] from now."""
    if not value or not value.strip():
        return None
    v = value.strip()
    try:
        delay = int(float(v) * 1000) if re.fullmatch(r"\d+(\.\d+)?", v) else parse_time_ms(v) - now_ms
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime
            delay = int(parsedate_to_datetime(v).timestamp() * 1000) - now_ms
        except (TypeError, ValueError):
            return None
    return now_ms + max(MIN_RETRY_AFTER_MS, min(MAX_RETRY_AFTER_MS, delay))


def sleep_until_ms(op: Op, now_ms: int) -> int:
    """Wake time of a Sleep op: ``opts.duration`` first, else ``name`` (a time or a duration)."""
    raw = ""
    raw = op.opts["duration"] if op.opts and isinstance(op.opts.get("duration"), str) else op.name
    if len(raw) >= 10:
        try:
            return max(now_ms, parse_time_ms(raw))
        except ValueError:
            pass
    try:
        return now_ms + parse_duration_ms(raw)
    except ValueError:
        return now_ms


def iso_ms(ms: int | None) -> str | None:
    """Epoch ms -> RFC 3339 UTC with milliseconds and ``Z``."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
