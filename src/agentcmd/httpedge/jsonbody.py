"""Strict JSON for request bodies: every way a body can be wrong is a 400 ``InputError``.

``json.loads`` alone lets through what later breaks the engine: ``NaN`` and
``Infinity`` (stored, then every page listing the event failed to encode it,
for good), and fails with exceptions that are not ``JSONDecodeError`` on
invalid UTF-8 (``UnicodeDecodeError``) or deep nesting (``RecursionError``),
which became 500s. Here all of them are input errors saying what to fix.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentcmd.errors import InputError

MAX_DEPTH = 128     # deeper nesting is refused: it breaks encoders and templates further on
DEPTH_FIX = f"flatten the data (at most {MAX_DEPTH} levels of nesting)"
JSON_FIX = "send a JSON body (UTF-8) with Content-Type: application/json"


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    raise InputError(f"request body contains {name}, which is not valid JSON (only finite numbers are)",
                     "send numbers as finite values, or null / a string for missing or special values")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InputError(f"request body contains the number {text[:40]}, which is out of range (it overflows to "
                         "infinity)", "send finite numbers (a string for huge values)")
    return value


def depth_of(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply arrays/objects nest in ``value`` (iterative; stops counting once past ``limit``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads(raw: bytes, what: str = "request body") -> Any:
    """Parse ``raw`` strictly (see the module docstring); ``None`` for an empty body."""
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not valid UTF-8 (bad byte at position {exc.start})", JSON_FIX) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON ({exc.msg} at position {exc.pos})", JSON_FIX) from None
    except RecursionError:
        raise InputError(f"{what} nests arrays/objects too deeply", DEPTH_FIX) from None
    except InputError:
        raise
    except ValueError as exc:   # e.g. an integer literal too long to convert
        raise InputError(f"{what} is not acceptable JSON ({exc})", JSON_FIX) from None
    # Cheap test first: fewer brackets than the limit cannot nest deeper (almost every body).
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and depth_of(value) > MAX_DEPTH:
        raise InputError(f"{what} nests arrays/objects deeper than {MAX_DEPTH} levels", DEPTH_FIX)
    if _SURROGATE_ESCAPE.search(raw):
        # "\ud800" alone parses to a string that cannot be encoded as UTF-8 (storing it fails later).
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"{what} contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)",
                             "escape characters outside the BMP as a surrogate pair, or send them as UTF-8") from None
    return value
