"""``debounce`` and ``batch`` rows: a buffer of events is due; start its run.

``flow.FlowDecision`` writes them while dispatching an event for a
function with ``debounce`` (one row per key, moved later by each new
event) or ``batchEvents`` (due at the batch's timeout; a full batch starts
at once instead). The row carries the events to start the run with.
"""

from __future__ import annotations

import sqlite3

from agentcmd.engine.kinds.context import KindContext
from agentcmd.engine.store import load_contexts, queue, runs
from agentcmd.engine.store.models import CallContext, QueueItem


async def fire_buffer(kx: KindContext, item: QueueItem) -> list[CallContext]:
    """Ack the row and start the run with its events (none if the function is gone)."""
    fn = kx.registry.get(str(item.payload.get("function")))
    now = kx.clock()
    lease = kx.lease_until()
    specs = []
    if fn is not None and item.payload.get("events"):
        specs.append(kx.dispatcher.run_spec(fn, list(item.payload["events"]), str(item.payload["event_id"])))

    def txn(conn: sqlite3.Connection) -> list[CallContext]:
        queue.ack_txn(conn, item.id)
        return load_contexts(conn, runs.create_runs_txn(conn, specs, now, lease))

    return await kx.store.write(txn)
