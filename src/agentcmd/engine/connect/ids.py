"""Unguessable ids for requests and leases, cheaply.

A lease id is authority (a WORKER_REQUEST_EXTEND_LEASE must quote it), and a
request id lets a reply answer a call, so both stay unguessable: 128 bits of
``os.urandom``. A ULID per id cost ~4 µs and two were made per call; one
``os.urandom`` read serves ``_POOL // _SIZE`` ids here.
"""

from __future__ import annotations

import os

_SIZE = 16           # bytes per id: 128 bits
_POOL = 4096         # bytes read from the OS at a time


class Ids:
    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def new(self) -> str:
        """A fresh 32-character hex id."""
        if self._at + _SIZE > len(self._pool):
            self._pool = os.urandom(_POOL)
            self._at = 0
        start = self._at
        self._at = start + _SIZE
        return self._pool[start:start + _SIZE].hex()
