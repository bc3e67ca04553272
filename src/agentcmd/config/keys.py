"""Event and signing keys: generate, validate, mask.

The official SDKs hex-decode the signing key after an optional
``signkey-<env>-`` prefix, so a key such as ``local-prod-signing`` crashes
them at the first signed request. We refuse such a key up front with a
message that says how to get a good one, instead of failing later inside
the SDK with a traceback.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from agentcmd.errors import ConfigError, InvalidSigningKeyError

SIGNING_KEY_PREFIX = "signkey-prod-"
_PREFIX_RE = re.compile(r"^signkey-[A-Za-z0-9]+-")
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})+$")

FIX_SIGNING_KEY = (
    "use 'signkey-prod-' followed by an even number of hex digits: run 'agentcmd install' "
    "to generate one (or 'agentcmd install --rotate-keys' to replace a bad one), "
    "or set INNGEST_SIGNING_KEY to the output of 'openssl rand -hex 32'"
)


def generate_signing_key() -> str:
    return SIGNING_KEY_PREFIX + secrets.token_hex(32)


def generate_event_key() -> str:
    return secrets.token_hex(32)


def generate_dashboard_token() -> str:
    return secrets.token_urlsafe(32)


def strip_prefix(key: str) -> str:
    """The hex part of a signing key (what the SDK hex-decodes)."""
    return _PREFIX_RE.sub("", key, count=1)


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
    return cleaned


def validate_event_key(key: str, source: str = "event key") -> str:
    cleaned = key.strip()
    if not cleaned or any(c.isspace() or c == "/" for c in cleaned):
        raise ConfigError(
            f"{source} must be a non-empty string without spaces or '/'", "run 'agentcmd install' to generate one"
        )
    return cleaned


def hash_signing_key(key: str) -> str:
    """The bearer token the SDK sends: bare sha256 hex of the hex-decoded key (no prefix)."""
    return hashlib.sha256(bytes.fromhex(strip_prefix(key))).hexdigest()


def mask(secret: str | None) -> str:
    """``signkey-prod-…3f9a``: enough to tell two keys apart, never enough to use one."""
    if not secret:
        return "(not set)"
    m = _PREFIX_RE.match(secret)
    prefix = m.group(0) if m else ""
    tail = secret[-4:] if len(secret) - len(prefix) >= 12 else ""
    return f"{prefix}…{tail}"
