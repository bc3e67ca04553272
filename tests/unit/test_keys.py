"""Keys: the SDK's format, validation that says 'hex', masking that never leaks."""

from __future__ import annotations

import hashlib
import re

import pytest

from agentcmd.config.keys import (
    generate_event_key,
    generate_signing_key,
    hash_signing_key,
    mask,
    validate_signing_key,
)
from agentcmd.errors import InvalidSigningKeyError


def test_generated_signing_key_has_the_sdk_format() -> None:
    key = generate_signing_key()
    assert re.fullmatch(r"signkey-prod-[0-9a-f]{64}", key)
    assert generate_signing_key() != key


def test_generated_event_key_is_random_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", generate_event_key())


@pytest.mark.parametrize("key", ["signkey-prod-00ff", "signkey-test-0123456789abcdef", "abcd", " signkey-x-AB \n"])
def test_valid_keys_are_accepted(key: str) -> None:
    assert validate_signing_key(key) == key.strip()


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
