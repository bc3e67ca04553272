"""signing.py against the official SDK's own signing code: what the engine signs the SDK accepts, and back.

The keyed HMAC state is cached per key (``signing._keyed``); these tests pin
that a cached key never signs for another key and that every part of the
message (body, timestamp) still counts.
"""

from __future__ import annotations

import json

from inngest._internal import net, server_lib

from agentcmd import signing

KEY = "signkey-prod-36a1f3b2dec415623923fcb56949e180259e4cfc2b583737062f1506a3ad3652"
OTHER = "signkey-prod-" + "ab" * 32
BODY = signing.canonical_json({"ctx": {"run_id": "r1", "attempt": 0}, "event": {"name": "e", "data": {"n": 1}},
                               "steps": {}, "version": 2})


def sdk_accepts(body: bytes, header: str, key: str) -> bool:
    got = net.validate_request_sig(body=body, headers={"x-inngest-signature": header},
                                   mode=server_lib.ServerKind.CLOUD, signing_key=key, signing_key_fallback=None)
    return got == key


def test_the_sdk_accepts_the_engines_request_signature_and_only_with_its_key() -> None:
    header = signing.sign(BODY, KEY)
    assert sdk_accepts(BODY, header, KEY)
    assert not sdk_accepts(BODY, header, OTHER)
    assert sdk_accepts(BODY, signing.sign(BODY, OTHER), OTHER)          # the cache holds one state per key
    assert not sdk_accepts(BODY, signing.sign(BODY, OTHER), KEY)


def test_the_signature_matches_the_sdks_own_signer_for_the_same_timestamp() -> None:
    for key in (KEY, OTHER, KEY.removeprefix("signkey-prod-")):
        assert signing.sign(BODY, key, 1_700_000_000) == net.sign_request(BODY, key, 1_700_000_000)


def test_signing_the_same_body_twice_gives_the_same_signature() -> None:
    """The cached keyed state is copied, never fed: a second message does not continue the first."""
    first = signing.sign(BODY, KEY, 1_700_000_000)
    signing.sign(b'{"other":true}', KEY, 1_700_000_001)
    assert signing.sign(BODY, KEY, 1_700_000_000) == first


def test_the_engine_accepts_the_sdks_response_signature_and_nothing_else() -> None:
    body = json.dumps([{"id": "abc", "op": "StepRun", "data": {"i": 1}}]).encode()
    header = net.sign_response(body, KEY, 1_700_000_000)
    assert isinstance(header, str)
    assert signing.verify_response(body, header, KEY)
    assert not signing.verify_response(body, header, OTHER)
    assert not signing.verify_response(body + b" ", header, KEY)
    assert not signing.verify_response(body, header.replace("t=1700000000", "t=1700000001"), KEY)
    assert not signing.verify_response(body, None, KEY)
    assert not signing.verify_response(body, "s=" + header.split("s=")[1], KEY)
