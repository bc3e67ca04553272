"""Every queue kind and its one handler: what a due queue row does, in one table.

The worker leases due rows and calls ``route``; ``HANDLERS`` maps each
``QueueKind`` to the coroutine that turns the row into committed state and
returns the SDK calls its commit leased back (the worker runs those
through ``Executor.call``). A handler acks its row in the same commit as
its effect, or leaves it to the commit it makes (``apply_outcome_txn``).

============  ============================================  =============================================
kind          enqueued                                      handler
============  ============================================  =============================================
event         ``POST /e`` stores an event (one row each,    ``calls.dispatch_event``: triggers, flow
              ``store.events.insert_events_txn``)                 control, pauses it resolves; starts runs
start         a run is created (``create_runs_txn``), due   ``calls.load_call``: the run's call context
              at once or when throttle/priority allow       (the worker makes the SDK call)
step          a step is planned, a discovery is due, a      ``calls.load_call``: as ``start``
              call is retried (``apply_outcome_txn``)
sleep         the SDK answered ``Sleep``, due when it ends  ``waits.fire_sleep``: memo null; the run's
              (``executor.decide``)                         next discovery comes back leased
wait_timeout  the SDK answered ``WaitForEvent`` or          ``waits.fire_wait_timeout``: if the pause is
              ``InvokeFunction``, due at its timeout        still open, memo null (wait) or a timeout
                                                            error (invoke); else only ack
debounce      an event for a debounced function; moved      ``buffers.fire_buffer``: start the run with
              later by each new event (``flow.apply``)      the last event
batch         the first event of a batch, due at the        ``buffers.fire_buffer``: start the run with
              batch timeout (``flow.apply``)                the events so far
cron          an app sync (``registry.py``), then each      ``cron.fire_cron``: store
              tick for the next one                         ``inngest/scheduled.timer``, queue the next
                                                            tick, start the run unless paused
run_timeout   a run is created with ``timeouts.start`` or   ``run_timeout.fire_run_timeout``: cancel the
              ``timeouts.finish`` (``create_runs_txn``)     run if still not started/finished (finish:
                                                            postponed to count from its start)
============  ============================================  =============================================

``tests/engine/test_kinds.py`` fails when a kind is added without
a handler here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from agentcmd.engine.kinds import buffers, calls, cron, run_timeout, waits
from agentcmd.engine.kinds.context import KindContext
from agentcmd.engine.store import queue
from agentcmd.engine.store.models import CallContext, QueueItem, QueueKind

__all__ = ["HANDLERS", "Handler", "KindContext", "route"]

log = logging.getLogger("agentcmd.engine.kinds")

Handler = Callable[[KindContext, QueueItem], Awaitable[list[CallContext]]]

HANDLERS: dict[QueueKind, Handler] = {
    QueueKind.EVENT: calls.dispatch_event,
    QueueKind.START: calls.load_call,
    QueueKind.STEP: calls.load_call,
    QueueKind.SLEEP: waits.fire_sleep,
    QueueKind.WAIT_TIMEOUT: waits.fire_wait_timeout,
    QueueKind.DEBOUNCE: buffers.fire_buffer,
    QueueKind.BATCH: buffers.fire_buffer,
    QueueKind.CRON: cron.fire_cron,
    QueueKind.RUN_TIMEOUT: run_timeout.fire_run_timeout,
}


def route(kx: KindContext, item: QueueItem) -> Awaitable[list[CallContext]]:
    """A due row's handler, called: the worker awaits it (no extra coroutine frame on the hot path)."""
    handler = HANDLERS.get(item.kind)
    return _drop(kx, item) if handler is None else handler(kx, item)


async def _drop(kx: KindContext, item: QueueItem) -> list[CallContext]:
    """A kind without a handler is logged and acked: it would never succeed."""
    log.error("unknown queue kind %s; dropping item %s", item.kind, item.id)
    await kx.store.write(lambda c: queue.ack_txn(c, item.id))
    return []
