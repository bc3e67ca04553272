"""Webhook signatures and the delivery record, without servers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agentcmd.server import webhooksig
from agentcmd.server.webhookstore import Claim, DeliveryStore


def test_githubs_documented_test_vector_verifies() -> None:
    """GitHub's "Validating webhook deliveries" gives this secret, payload and signature to test against."""
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert "sha256=" + webhooksig.sign(secret, body) == expected
    assert webhooksig.matches(secret, body, expected, prefix_required=True)
    assert webhooksig.matches(secret, body, expected.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha256=00", "md5=abc", "757107ea", "sha256=é",
                                    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"])
def test_anything_but_the_right_prefixed_hmac_is_refused_for_github(header: str | None) -> None:
    assert not webhooksig.matches("It's a Secret to Everybody", b"Hello, World!", header, prefix_required=True)


def test_a_bare_hex_signature_is_accepted_where_no_prefix_is_required() -> None:
    sig = webhooksig.sign("s" * 20, b"{}")
    assert webhooksig.matches("s" * 20, b"{}", sig)
    assert not webhooksig.matches("s" * 20, b"{} ", sig)   # the raw bytes, not a re-encoding
    assert not webhooksig.matches("t" * 20, b"{}", sig)


def test_linear_timestamps_must_be_within_a_minute() -> None:
    now = 1_800_000_000_000
    assert webhooksig.fresh(now - 59_000, now) and webhooksig.fresh(now + 30_000, now)
    assert not webhooksig.fresh(now - 61_000, now)
    for bad in (None, "1800000000000", True, [now]):
        assert not webhooksig.fresh(bad, now)


def test_the_delivery_record_claims_once_survives_reopening_and_is_private(tmp_path: Path) -> None:
    store = DeliveryStore.under(tmp_path / "data")
    assert store.claim("github", "d1", "github/issues") is Claim.NEW
    assert store.claim("github", "d1", "github/issues") is Claim.PENDING   # not yet confirmed sent
    store.mark_sent("github", "d1")
    assert store.claim("github", "d1", "github/issues") is Claim.SENT
    assert store.claim("linear", "d1", "linear/issue") is Claim.NEW        # ids are per source
    store.release("linear", "d1")                                        # the engine was down: forget it
    assert store.claim("linear", "d1", "linear/issue") is Claim.NEW
    store.close()
    reopened = DeliveryStore.under(tmp_path / "data")
    assert reopened.claim("github", "d1", "github/issues") is Claim.SENT
    assert stat.S_IMODE(os.stat(reopened.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(reopened.path.parent).st_mode) == 0o700
    reopened.close()
