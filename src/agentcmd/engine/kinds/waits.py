"""``sleep`` and ``wait_timeout`` rows: a step that waited is done; the run is discovered again.

Both rows are written by ``executor.decide`` when the SDK answers with a
``Sleep``, ``WaitForEvent`` or ``InvokeFunction`` op, due when the sleep
ends or the wait expires. Firing one stores the step's memo and commits
like an SDK answer would (``runs.apply_outcome_txn``), so the run's next
discovery call comes back leased.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agentcmd.engine.kinds.context import KindContext
from agentcmd.engine.protocol import Opcode, error_memo
from agentcmd.engine.store import load_contexts, queue, runs
from agentcmd.engine.store.models import CallContext, MemoWrite, Outcome, QueueItem

INVOKE_TIMEOUT_ERROR = {"name": "InngestInvokeTimeoutError",
                        "message": "Timed out waiting for invoked function to complete",
                        "error": "InngestInvokeTimeoutError: Timed out waiting for invoked function to complete"}


async def fire_sleep(kx: KindContext, item: QueueItem) -> list[CallContext]:
    """A sleep is over: memoize it as null."""
    name = str(item.payload.get("name") or item.step_id)
    outcome = Outcome(memos=[MemoWrite(str(item.step_id), name, Opcode.SLEEP.value, None)])
    return await kx.store.apply_outcome(str(item.run_id), item, outcome, kx.lease_until())


async def fire_wait_timeout(kx: KindContext, item: QueueItem) -> list[CallContext]:
    """A wait/invoke deadline: resolve the pause with null (wait) or a timeout error (invoke).

    If an event or the invoked run's end claimed the pause first, the row
    is only acked.
    """
    run_id, step_id = str(item.run_id), str(item.step_id)
    kind = item.payload.get("kind")
    name = str(item.payload.get("name") or step_id)
    now = kx.clock()
    lease = kx.lease_until()
    memo: Any = error_memo(INVOKE_TIMEOUT_ERROR) if kind == "invoke" else None
    outcome = Outcome(memos=[MemoWrite(step_id, name, "InvokeFunction" if kind == "invoke" else "WaitForEvent",
                                       memo, failed=kind == "invoke")])

    def txn(conn: sqlite3.Connection) -> list[CallContext]:
        if runs.claim_pause_by_step_txn(conn, run_id, step_id) is None:
            queue.ack_txn(conn, item.id)
            return []
        return load_contexts(conn, runs.apply_outcome_txn(conn, run_id, item, outcome, now, lease))

    return await kx.store.write(txn)
