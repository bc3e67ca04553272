"""Keys: the SDK's format, validation that says 'hex', masking that never leaks."""

from __future__ import annotations

import hashlib
import re
import secrets

import pytest

from agentcmd.config.keys import (
    estimated_bits,
    generate_event_key,
    generate_signing_key,
    hash_signing_key,
    mask,
    validate_event_key,
    validate_signing_key,
)
from agentcmd.errors import ConfigError, InvalidSigningKeyError


def test_generated_signing_key_has_the_sdk_format() -> None:
    key = generate_signing_key()
    assert re.fullmatch(r"signkey-prod-[0-9a-f]{64}", key)
    assert generate_signing_key() != key


def test_generated_event_key_is_random_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", generate_event_key())


STRONG_HEX = "36a1f3b2dec415623923fcb56949e180259e4cfc2b583737062f1506a3ad3652"


@pytest.mark.parametrize("key", ["signkey-prod-" + STRONG_HEX, "signkey-test-" + STRONG_HEX[:32], STRONG_HEX,
                                 " signkey-x-" + STRONG_HEX.upper() + " \n",
                                 pytest.param(generate_signing_key(), id="generated")])  # same id in every xdist worker
def test_valid_keys_are_accepted(key: str) -> None:
    assert validate_signing_key(key) == key.strip()


@pytest.mark.parametrize(("key", "why"), [
    ("signkey-prod-00", "too short (2 hex digits after the prefix; the minimum is 32)"),
    ("signkey-prod-00ff", "too short"),
    ("signkey-prod-" + STRONG_HEX[:30], "too short"),
    ("signkey-prod-" + "ab" * 32, "one short pattern repeated"),
    ("signkey-prod-" + "0" * 64, "one short pattern repeated"),
    ("signkey-prod-" + "0" * 56 + STRONG_HEX[:8], "placeholder"),
])
def test_weak_signing_keys_are_refused_with_the_minimum_and_the_fix(key: str, why: str) -> None:
    with pytest.raises(InvalidSigningKeyError) as info:
        validate_signing_key(key, "signing key (INNGEST_SIGNING_KEY)")
    err = info.value
    assert err.what.startswith("signing key (INNGEST_SIGNING_KEY) is too weak: ") and why in err.what
    assert err.fix and "agentcmd install" in err.fix and "at least 32 random hex digits" in err.fix
    assert key.removeprefix("signkey-prod-") not in str(err) + (err.fix or "")


@pytest.mark.parametrize(("key", "why"), [
    ("a", "too short (1 characters; the minimum is 32)"),
    ("benchkey", "too short"),
    ("e" * 64, "one short pattern repeated"),
    ("loadbenchkey" * 3, "one short pattern repeated"),
    ("evkey" + "cd" * 16, "placeholder"),
])
def test_weak_event_keys_are_refused_with_the_minimum_and_the_fix(key: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_event_key(key)
    err = info.value
    assert err.what.startswith("event key is too weak: ") and why in err.what
    assert err.fix and "agentcmd install" in err.fix and "at least 32 random characters" in err.fix
    assert len(key) < 8 or key not in str(err) + (err.fix or "")


def test_random_keys_of_the_minimum_length_are_never_refused() -> None:
    for _ in range(2000):
        validate_signing_key("signkey-prod-" + secrets.token_hex(16))
        validate_event_key(secrets.token_hex(16))
        validate_event_key(secrets.token_urlsafe(24))
    assert estimated_bits("") == 0 and estimated_bits("ab") == 2


@pytest.mark.parametrize(
    "key", ["local-prod-signing", "signkey-prod-abc", "signkey-prod-", "xyz", "   ", "signkey-prod-zz"]
)
def test_invalid_keys_are_refused_with_a_message_about_hex(key: str) -> None:
    with pytest.raises(InvalidSigningKeyError) as info:
        validate_signing_key(key)
    err = info.value
    assert "hex" in err.what or "empty" in err.what
    assert err.fix and "agentcmd install" in err.fix
    if len(key.strip()) > len("signkey-prod-"):
        assert key.strip() not in str(err)


def test_bearer_hash_matches_the_sdk() -> None:
    # Worked example from the wire reference §2.4.
    assert hash_signing_key("signkey-test-0123456789abcdef") == (
        "55c53f5d490297900cefa825d0c8e8e9532ee8a118abe7d8570762cd38be9818"
    )
    assert hash_signing_key("0123456789abcdef") == hashlib.sha256(bytes.fromhex("0123456789abcdef")).hexdigest()


def test_mask_keeps_prefix_and_last_four_only() -> None:
    key = "signkey-prod-" + "ab" * 31 + "3f9a"
    assert mask(key) == "signkey-prod-…3f9a"
    assert mask("short") == "…"
    assert mask(None) == "(not set)"
