"""Webhook signatures: HMAC-SHA256 of the raw body, compared in constant time.

GitHub sends ``X-Hub-Signature-256: sha256=<hex>``, Linear
``Linear-Signature: <hex>``, a generic sender either form in its
configured header. The HMAC is over the bytes as received (never a
re-encoded parse), and the comparison is ``hmac.compare_digest``, so the
time taken says nothing about how much of a forged signature was right.
"""

from __future__ import annotations

import hashlib
import hmac
import time

LINEAR_MAX_AGE_MS = 60_000
"""Linear's advice: refuse a delivery whose ``webhookTimestamp`` is more than a minute from now (replays)."""


def sign(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` (what senders put in their header; tests and benchmarks sign with it)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def matches(secret: str, body: bytes, header: str | None, *, prefix_required: bool = False) -> bool:
    """Does ``header`` (``sha256=<hex>`` or, unless ``prefix_required``, ``<hex>``) sign ``body``?"""
    if not header:
        return False
    given = header.strip()
    if given[:7].lower() == "sha256=":
        given = given[7:]
    elif prefix_required:
        return False
    expected = sign(secret, body)
    # compare_digest on ASCII bytes: a non-ASCII header is simply wrong, not an exception.
    return hmac.compare_digest(expected.encode(), given.lower().encode("ascii", "replace"))


def fresh(timestamp_ms: object, now_ms: int | None = None, max_age_ms: int = LINEAR_MAX_AGE_MS) -> bool:
    """Is a sender's millisecond timestamp within ``max_age_ms`` of now (either side)?"""
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int | float):
        return False
    now = time.time() * 1000 if now_ms is None else now_ms
    return abs(now - float(timestamp_ms)) <= max_age_ms
