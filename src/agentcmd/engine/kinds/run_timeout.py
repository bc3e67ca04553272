"""``run_timeout`` rows: a function's ``timeouts.start`` or ``timeouts.finish`` came due.

``runs.create_runs_txn`` enqueues one per configured timeout when it
creates the run (payload ``{"which": "start" | "finish"}``). Firing it
cancels the run if it has not started (``start``) or finished (``finish``)
by then; a ``finish`` check counts from the run's start, so one that came
due early is postponed instead (``flow/timeouts.py``). The checks and the
cancel are one transaction (``timeouts.run_timeout_txn``).
"""

from __future__ import annotations

from agentcmd.engine.flow import timeouts
from agentcmd.engine.kinds.context import KindContext
from agentcmd.engine.store.models import CallContext, QueueItem


async def fire_run_timeout(kx: KindContext, item: QueueItem) -> list[CallContext]:
    """Cancel the run if it is still not started/finished; wake the worker for what the cancel queued."""
    now = kx.clock()
    if await kx.store.write(lambda c: timeouts.run_timeout_txn(c, item, now)):
        kx.wake()
    return []
