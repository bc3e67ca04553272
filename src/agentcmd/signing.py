"""Signatures between the engine and the SDK, and bearer checks (reference §2).

* Requests to the SDK carry ``X-Inngest-Signature: t=<unix s>&s=<hex>``,
  HMAC-SHA256 keyed by the signing key *without* its ``signkey-<env>-``
  prefix, as UTF-8 bytes (not hex-decoded), over the JCS (RFC 8785) form of
  the body followed by ``t``. The SDK re-canonicalises what it receives, so
  the engine sends exactly the canonical bytes it signed.
* The SDK authenticates to us with ``Authorization: Bearer <sha256 hex of the
  hex-decoded key>``; we also accept the raw key, with or without prefix.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import time
from typing import Any

# The one home of the signing-key helpers: config/keys.py (validation, generation)
# imports them from here, and this module imports no settings stack (pydantic),
# so dev mode keeps it off the engine's startup path.
PREFIX_RE = re.compile(r"^signkey-[A-Za-z0-9]+-")
"""The optional ``signkey-<env>-`` prefix of a signing key."""


def strip_prefix(key: str) -> str:
    """The hex part of a signing key (what the SDK hex-decodes)."""
    return PREFIX_RE.sub("", key, count=1)


def hash_signing_key(key: str) -> str:
    """The bearer token the SDK sends: bare sha256 hex of the hex-decoded key (no prefix)."""
    return hashlib.sha256(bytes.fromhex(strip_prefix(key))).hexdigest()


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value`` (what the SDK verifies against)."""
    import jcs  # type: ignore[import-untyped]

    try:
        out = jcs.canonicalize(value)
    except (TypeError, ValueError):
        # jcs refuses NaN/Infinity; so would the SDK's json parser.
        out = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return bytes(out)


def compact_json(value: Any) -> bytes:
    """Fast compact JSON for dev mode, where nothing is signed."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@functools.lru_cache(maxsize=8)
def _keyed(signing_key: str) -> hmac.HMAC:
    """HMAC-SHA256 keyed by ``signing_key`` (prefix stripped), before any message.

    Every SDK call signs its request and checks the answer: copying this
    keyed state skips the prefix regex, the key encoding and the two key pads
    per call.
    """
    return hmac.new(strip_prefix(signing_key).encode("utf-8"), digestmod=hashlib.sha256)


def _mac(body: bytes, signing_key: str, t: str) -> str:
    mac = _keyed(signing_key).copy()
    mac.update(body)
    mac.update(t.encode("utf-8"))
    return mac.hexdigest()


def sign(body: bytes, signing_key: str, unix_s: int | None = None) -> str:
    """The ``X-Inngest-Signature`` value for already-canonical ``body``."""
    t = int(time.time()) if unix_s is None else unix_s
    return f"t={t}&s={_mac(body, signing_key, str(t))}"


def verify_response(body: bytes, header: str | None, signing_key: str) -> bool:
    """Check the SDK's response signature (HMAC over the raw response bytes)."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split("&") if "=" in p)
    t, s = parts.get("t"), parts.get("s")
    if not t or not s:
        return False
    return hmac.compare_digest(_mac(body, signing_key, t), s)


class BearerCheck:
    """Accepts ``Bearer <hashed key>`` or the raw key (optionally prefixed), constant time."""

    def __init__(self, signing_key: str) -> None:
        self._raw = strip_prefix(signing_key).lower()
        self._hashed = hash_signing_key(signing_key).lower()

    def ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        token = strip_prefix(authorization[7:].strip()).lower()
        a = hmac.compare_digest(token.encode(), self._hashed.encode())
        b = hmac.compare_digest(token.encode(), self._raw.encode())
        return a or b
