"""Pausing a function (``POST /v1/functions/{id}/pause`` and ``/unpause``, routes in ``api/functions.py``).

As in Inngest ("pause immediately"): while a function is paused, events
are still stored but do not trigger it (the skip is recorded in
``flow_skips`` with reason ``paused``), its cron ticks start nothing, and
runs already in progress stop before their next SDK call: the call is
parked like one waiting on a full concurrency key (``concurrency.py``,
key ``paused:<slug>``, limit 0). Unpausing resumes those runs where they
stopped; events received meanwhile are not replayed (Inngest says the same).

The paused state is the ``flow_paused`` table (migration 0004; its rows:
``store/flow.py``), so it survives restarts; the gate keeps a copy in
memory for the hot path.
"""

from __future__ import annotations

PAUSED_PREFIX = "paused:"


def paused_key(slug: str) -> str:
    return PAUSED_PREFIX + slug


