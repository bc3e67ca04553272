"""Event and signing keys: generate, validate, mask.

The official SDKs hex-decode the signing key after an optional
``signkey-<env>-`` prefix, so a key such as ``local-prod-signing`` crashes
them at the first signed request. We refuse such a key up front with a
message that says how to get a good one, instead of failing later inside
the SDK with a traceback.

A well-formed key can still be guessable: ``signkey-prod-00`` signs every
request to the app, and an event key ``a`` lets anyone start runs. So both
keys must also be long (``MIN_SIGNING_HEX_DIGITS`` hex digits after the
prefix, ``MIN_EVENT_KEY_CHARS`` characters) and look random: an estimate of
their randomness (``estimated_bits``: length times the Shannon entropy of
their characters) of at least ``MIN_KEY_BITS``, and not one short pattern
repeated. 32 random hex digits estimate at 91-125 bits (the lowest of
200,000 random draws was 91), so a random key is never refused, while
``"ab" * 32`` (64 bits) or ``"0" * 64`` (0) are. The keys ``agentcmd install``
generates have 64 random hex digits.

Stripping the prefix and hashing a key for the bearer live in
``agentcmd.signing`` (the engine and the app server use them without the
settings stack); they are re-exported here.
"""

from __future__ import annotations

import math
import re
import secrets
from collections import Counter

from agentcmd.errors import ConfigError, InvalidSigningKeyError
from agentcmd.signing import PREFIX_RE
from agentcmd.signing import hash_signing_key as hash_signing_key  # re-exported: one implementation
from agentcmd.signing import strip_prefix as strip_prefix

SIGNING_KEY_PREFIX = "signkey-prod-"
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})+$")

MIN_SIGNING_HEX_DIGITS = 32    # 128 bits; generated keys have 64 hex digits (256 bits)
MIN_EVENT_KEY_CHARS = 32
MIN_KEY_BITS = 80

FIX_SIGNING_KEY = (
    f"use 'signkey-prod-' followed by at least {MIN_SIGNING_HEX_DIGITS} random hex digits (an even number): "
    "run 'agentcmd install' "
    "to generate one (or 'agentcmd install --rotate-keys' to replace a bad one), "
    "or set INNGEST_SIGNING_KEY to the output of 'openssl rand -hex 32'"
)


FIX_EVENT_KEY = (
    f"use at least {MIN_EVENT_KEY_CHARS} random characters: run 'agentcmd install' to generate one "
    "(or 'agentcmd install --rotate-keys' to replace every key), or set INNGEST_EVENT_KEY to the output of "
    "'openssl rand -hex 32'"
)


def estimated_bits(text: str) -> float:
    """Randomness estimate: length x the Shannon entropy of the characters (bits per character)."""
    if not text:
        return 0.0
    n = len(text)
    per_char = -sum(c / n * math.log2(c / n) for c in Counter(text).values())
    return n * per_char


def _repeats_a_pattern(text: str) -> bool:
    """``abcabcabc``: the whole text is one shorter piece repeated."""
    return len(text) > 1 and (text + text).find(text, 1) < len(text)


def weakness(secret: str, minimum: int, unit: str) -> str | None:
    """Why ``secret`` is too weak to protect anything, or None. Never quotes it."""
    if len(secret) < minimum:
        return f"it is too short ({len(secret)} {unit}; the minimum is {minimum})"
    if _repeats_a_pattern(secret):
        return "it is one short pattern repeated"
    bits = estimated_bits(secret)
    if bits < MIN_KEY_BITS:
        return (f"it looks like a placeholder, not a random key (about {bits:.0f} bits of randomness, "
                f"{len(set(secret))} different characters; at least {MIN_KEY_BITS} bits are needed)")
    return None


def generate_signing_key() -> str:
    return SIGNING_KEY_PREFIX + secrets.token_hex(32)


def generate_event_key() -> str:
    return secrets.token_hex(32)


def generate_dashboard_token() -> str:
    return secrets.token_urlsafe(32)


def validate_signing_key(key: str, source: str = "signing key") -> str:
    """Return ``key`` stripped of whitespace, or raise naming ``source``.

    The message says "hex" and how to fix it; it never echoes the key.
    """
    cleaned = key.strip()
    if not cleaned:
        raise InvalidSigningKeyError(f"{source} is empty", FIX_SIGNING_KEY)
    body = strip_prefix(cleaned)
    if not _HEX_RE.match(body):
        why = "an odd number of hex digits" if re.fullmatch(r"[0-9a-fA-F]+", body) else "not hex"
        raise InvalidSigningKeyError(
            f"{source} is {why}: expected an optional 'signkey-<env>-' prefix followed by "
            f"an even number of hex digits ({len(cleaned)} characters given)",
            FIX_SIGNING_KEY,
        )
    why_weak = weakness(body.lower(), MIN_SIGNING_HEX_DIGITS, "hex digits after the prefix")
    if why_weak is not None:
        raise InvalidSigningKeyError(f"{source} is too weak: {why_weak}", FIX_SIGNING_KEY)
    return cleaned


def validate_event_key(key: str, source: str = "event key") -> str:
    cleaned = key.strip()
    if not cleaned or any(c.isspace() or c == "/" for c in cleaned):
        raise ConfigError(
            f"{source} must be a non-empty string without spaces or '/'", FIX_EVENT_KEY
        )
    why_weak = weakness(cleaned, MIN_EVENT_KEY_CHARS, "characters")
    if why_weak is not None:
        raise ConfigError(f"{source} is too weak: {why_weak}", FIX_EVENT_KEY)
    return cleaned


def refused(name: str, value: str) -> bool:
    """Would the engine refuse this config value (``event_key`` / ``signing_key``)?"""
    try:
        if name == "signing_key":
            validate_signing_key(value)
        elif name == "event_key":
            validate_event_key(value)
    except ConfigError:
        return True
    return False


def mask(secret: str | None) -> str:
    """``signkey-prod-…3f9a``: enough to tell two keys apart, never enough to use one."""
    if not secret:
        return "(not set)"
    m = PREFIX_RE.match(secret)
    prefix = m.group(0) if m else ""
    tail = secret[-4:] if len(secret) - len(prefix) >= 12 else ""
    return f"{prefix}…{tail}"
