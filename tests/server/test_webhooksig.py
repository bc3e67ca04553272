"""Webhook signatures and the delivery record, without servers."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentcmd.server import webhooksig, webhookstore
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
    store.release("github", "d1")                                        # releasing never undoes "sent"
    assert store.claim("github", "d1", "github/issues") is Claim.SENT
    store.close()
    reopened = DeliveryStore.under(tmp_path / "data")
    assert reopened.claim("github", "d1", "github/issues") is Claim.SENT
    assert reopened.count() == 2
    assert stat.S_IMODE(os.stat(reopened.path).st_mode) == 0o700
    files = [p for p in reopened.path.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    assert all(stat.S_IMODE(os.stat(d).st_mode) == 0o700 for d in reopened.path.rglob("*") if d.is_dir())
    reopened.close()


def test_a_hostile_delivery_id_never_becomes_a_path(tmp_path: Path) -> None:
    store = DeliveryStore.under(tmp_path / "data")
    for hostile in ("../../escape", "/etc/passwd", "a/b", "x" * 5000, "nul\0byte", "."):
        assert store.claim("generic/../..", hostile, "webhook/x") is Claim.NEW
        store.mark_sent("generic/../..", hostile)
        assert store.claim("generic/../..", hostile, "webhook/x") is Claim.SENT
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(store.path)}
    assert outside == {tmp_path / "data", tmp_path / "data" / "webhooks"}
    names = [p.name for p in store.path.rglob("*") if p.is_file()]
    assert names and all(re.fullmatch(r"[0-9a-f]{64}\.(claim|sent)", n) for n in names)


def test_concurrent_copies_of_one_delivery_are_claimed_exactly_once(tmp_path: Path) -> None:
    store = DeliveryStore.under(tmp_path / "data")
    start = threading.Barrier(8)

    def claim(_: int) -> Claim:
        start.wait()
        return store.claim("github", "same", "github/issues")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(claim, range(8)))
    assert results.count(Claim.NEW) == 1 and results.count(Claim.PENDING) == 7


def test_records_older_than_the_keep_window_are_pruned_and_pruning_is_throttled(tmp_path: Path) -> None:
    store = DeliveryStore.under(tmp_path / "data")
    store.claim("github", "old", "github/issues")
    store.mark_sent("github", "old")
    store.claim("github", "new", "github/issues")
    store.mark_sent("github", "new")
    aged = time.time() - (webhookstore.KEEP_DAYS * 86_400 + 60)
    for f in store.path.rglob("*"):
        if f.is_file() and json.loads(f.read_text())["delivery"] == "old":
            os.utime(f, (aged, aged))
    # The store pruned when it opened; the next scheduled prune is an hour away, so nothing goes yet.
    assert store.claim("github", "other", "github/issues") is Claim.NEW
    assert store.count() == 3
    assert store.prune(time.time() + webhookstore.PRUNE_EVERY_S) == 2   # both files of "old"
    assert store.count() == 2
    assert store.claim("github", "old", "github/issues") is Claim.NEW   # forgotten: a new delivery now
    assert store.claim("github", "new", "github/issues") is Claim.SENT
    # Reopening (an app server restart) prunes too.
    for f in store.path.rglob("*"):
        if f.is_file():
            os.utime(f, (aged, aged))
    assert DeliveryStore.under(tmp_path / "data").count() == 0
