"""``cron`` rows: one tick of one function's cron trigger.

The registry enqueues the first tick of each cron trigger when an app
syncs (``registry.py``, deduplicated per function and schedule); each tick
enqueues the next one in its own commit. A tick stores an
``inngest/scheduled.timer`` event and starts the function's run, unless
the function is paused (``flow/pause.py``): then the event is stored and
the next tick queued, but nothing starts.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ulid import ULID

from agentcmd.engine import triggers
from agentcmd.engine.kinds.context import KindContext
from agentcmd.engine.protocol import iso_ms
from agentcmd.engine.store import events, load_contexts, queue, runs
from agentcmd.engine.store import flow as flow_rows
from agentcmd.engine.store.models import CallContext, NewEvent, NewItem, QueueItem, QueueKind


async def fire_cron(kx: KindContext, item: QueueItem) -> list[CallContext]:
    """Emit the tick's event, queue the next tick, start the run (function gone: only ack)."""
    slug = str(item.payload.get("function"))
    spec = str(item.payload.get("cron"))
    fn = kx.registry.get(slug)
    now = kx.clock()
    lease = kx.lease_until()
    internal = str(ULID())
    body: dict[str, Any] = {
        "name": "inngest/scheduled.timer", "id": iso_ms(item.ready_at) or internal, "ts": now, "user": {},
        "data": {"cron": spec, "scheduledAt": iso_ms(item.ready_at), "fireAt": iso_ms(now)}}
    dedupe = item.payload.get("dedupe") or f"cron:{slug}:{json.dumps(spec)}"
    specs = [kx.dispatcher.run_spec(fn, [body], internal)] if fn is not None else []
    try:
        next_at = triggers.next_cron_ms(spec, now)
    except Exception:
        next_at = None

    def txn(conn: sqlite3.Connection) -> list[CallContext]:
        queue.ack_txn(conn, item.id)
        if fn is None:
            return []
        events.insert_events_txn(conn, [NewEvent(internal, body["name"], body, None, now)], now,
                                 dispatch=False)
        if next_at is not None:
            queue.enqueue_txn(conn, None, NewItem(QueueKind.CRON, None, next_at,
                                                   {"function": slug, "cron": spec, "dedupe": str(dedupe)},
                                                   dedupe=str(dedupe)))
        if flow_rows.is_paused_txn(conn, slug):
            return []       # a paused function's cron ticks start nothing (flow/pause.py)
        return load_contexts(conn, runs.create_runs_txn(conn, specs, now, lease))

    return await kx.store.write(txn)
