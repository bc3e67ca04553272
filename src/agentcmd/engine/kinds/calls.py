"""``event``, ``start`` and ``step`` rows: the ones that lead to SDK calls.

An ``event`` row goes to the dispatcher (triggers, flow control, pauses);
``start`` and ``step`` rows load the run's call context, which the worker
then runs through ``Executor.call``. The SDK call itself is not made here.
"""

from __future__ import annotations

from agentcmd.engine.kinds.context import KindContext
from agentcmd.engine.store import queue
from agentcmd.engine.store.models import CallContext, QueueItem


async def dispatch_event(kx: KindContext, item: QueueItem) -> list[CallContext]:
    """Match one stored event against triggers and pauses; the runs it starts come back leased."""
    return await kx.dispatcher.dispatch(item)


async def load_call(kx: KindContext, item: QueueItem) -> list[CallContext]:
    """A run's next call: its context, or an ack if the run is gone."""
    ctxs = await kx.store.load_contexts([item])
    if not ctxs:
        await kx.store.write(lambda c: queue.ack_txn(c, item.id))
    return ctxs
