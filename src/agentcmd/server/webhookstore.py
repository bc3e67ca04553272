"""The app server's record of webhook deliveries: a repeated delivery id starts nothing twice.

GitHub and Linear redeliver (a timeout on their side, a "Redeliver"
click), and anyone who captured a signed request can replay it: the
signature is still valid. So every accepted delivery id is kept on disk,
one small file per delivery under ``<data dir>/webhooks/deliveries/``
(0700 directories, 0600 files), which outlives app server restarts. The
engine's own idempotency (the event id ``<source>-<delivery id>``,
honoured for 24 hours) is the second line, for the moment between the
record and the event.

A delivery id is hostile input, so it never becomes a path: a file's name
is the SHA-256 of ``<source> NUL <delivery id>``, under a directory named
after its first two hex digits (so no directory grows past a few thousand
entries).

A delivery is first *claimed*: ``<hash>.claim`` created with
``O_CREAT|O_EXCL``, so of two copies arriving at once exactly one passes.
Once the engine has the event it is marked *sent* (``<hash>.sent``). If the
send fails the claim is released (the ``.claim`` file removed), so the
sender's retry is not mistaken for a duplicate; a claim left by a crash
between the two is sent again on the next copy (the engine drops the
second event by its id). A ``.sent`` file decides alone: releasing never
undoes it.

Delivery ids are remembered for ``KEEP_DAYS`` (30) days after they arrive:
well past any sender's redelivery window (GitHub redelivers up to 3 days
back), while the record stays bounded. Older files are pruned when the
store opens and then at most once every ``PRUNE_EVERY_S`` (an hour), by
the claim that finds the hour over: one directory scan, no timer thread.

Calls are synchronous file system work: the routes run them with
``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from enum import StrEnum
from pathlib import Path

from agentcmd.privatefs import FILE_MODE, ensure_private_dir

KEEP_DAYS = 30
PRUNE_EVERY_S = 3600.0


class Claim(StrEnum):
    NEW = "new"          # first time seen: send it
    PENDING = "pending"  # claimed before, never confirmed sent (a crash, or a copy in flight): send again
    SENT = "sent"        # the engine has it: a duplicate


class DeliveryStore:
    """A directory of per-delivery marker files (thread-safe: every change is one exclusive create or unlink)."""

    def __init__(self, path: Path) -> None:
        ensure_private_dir(path)
        self.path = path
        self._lock = threading.Lock()
        self._next_prune = 0.0
        self.prune()

    @classmethod
    def under(cls, data_dir: Path) -> DeliveryStore:
        return cls(data_dir / "webhooks" / "deliveries")

    def _file(self, source: str, delivery_id: str, suffix: str) -> Path:
        digest = hashlib.sha256(f"{source}\0{delivery_id}".encode()).hexdigest()
        return self.path / digest[:2] / f"{digest}{suffix}"

    def claim(self, source: str, delivery_id: str, event_name: str) -> Claim:
        self._maybe_prune()
        if self._file(source, delivery_id, ".sent").exists():
            return Claim.SENT
        marker = self._file(source, delivery_id, ".claim")
        ensure_private_dir(marker.parent)
        record = {"source": source, "delivery": delivery_id, "event": event_name, "received_at": _now_ms()}
        if _create(marker, record):
            return Claim.NEW
        return Claim.SENT if self._file(source, delivery_id, ".sent").exists() else Claim.PENDING

    def mark_sent(self, source: str, delivery_id: str) -> None:
        sent = self._file(source, delivery_id, ".sent")
        ensure_private_dir(sent.parent)
        _create(sent, {"source": source, "delivery": delivery_id, "sent_at": _now_ms()})

    def release(self, source: str, delivery_id: str) -> None:
        """Forget a claim whose event never reached the engine, so the sender's retry goes through."""
        with contextlib.suppress(FileNotFoundError):
            self._file(source, delivery_id, ".claim").unlink()

    def count(self) -> int:
        """How many deliveries are remembered (claimed or sent)."""
        names = {entry.name.split(".")[0] for entry in self._entries()}
        return len(names)

    def prune(self, now: float | None = None) -> int:
        """Remove the records that arrived more than ``KEEP_DAYS`` ago; returns how many files went."""
        now = time.time() if now is None else now
        cutoff = now - KEEP_DAYS * 86_400
        removed = 0
        with self._lock:
            self._next_prune = now + PRUNE_EVERY_S
        for entry in self._entries():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def _maybe_prune(self) -> None:
        now = time.time()
        with self._lock:
            due = now >= self._next_prune
            if due:
                self._next_prune = now + PRUNE_EVERY_S
        if due:
            self.prune(now)

    def _entries(self) -> list[os.DirEntry[str]]:
        found: list[os.DirEntry[str]] = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.path) as shards:
            for shard in shards:
                if shard.is_dir(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError), os.scandir(shard.path) as files:
                        found.extend(f for f in files if f.is_file(follow_symlinks=False))
        return found

    def close(self) -> None:
        """Nothing stays open; kept so callers can treat every store alike."""


def _create(path: Path, record: dict[str, object]) -> bool:
    """Create ``path`` (0600) holding ``record``; False when it already exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    return True


def _now_ms() -> int:
    return int(time.time() * 1000)
