"""The worker loop: lease due queue items and run them with bounded concurrency.

* What a due item does depends on its kind; the worker knows none of
  that: it routes each item through ``kinds.HANDLERS`` and runs the SDK
  calls the handler hands back (``Executor.call``).
* Wakes on ``wake()`` (an event was accepted, a run was cancelled) or when
  the earliest ``ready_at`` comes due; never busy-polls.
* A task that commits a step usually gets the run's next call leased back
  (``Executor``) and runs it at once: one transaction per step.
* ``stop()``: no new leases; in-flight SDK calls are cut at once and
  recorded as interrupted (same attempt, due at once: docs/engine.md, interrupted calls), the
  rest of the work gets ``grace_s`` to commit, then it is cancelled; items
  still leased then are requeued at the next start (that is the
  crash-recovery path too).
* Every ``sweep_s`` leases that ran out (a call that hung past its
  lease) are requeued.
* While the database cannot be written (disk full, read-only, locked by
  another process), leasing pauses and retries every ``OUTAGE_RETRY_S``;
  calls whose results could not be saved are requeued once a write
  succeeds (``_strand``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Coroutine
from typing import Any

from agentcmd.engine import debug_triggers, flow, kinds
from agentcmd.engine.clock import Clock
from agentcmd.engine.executor import Executor
from agentcmd.engine.ingest import Dispatcher
from agentcmd.engine.store import Store, queue, runs
from agentcmd.engine.store.models import CallContext, QueueItem, RunStatus
from agentcmd.errors import DatabaseLockedError, DatabaseUnwritableError
from agentcmd.observe import runlog

log = logging.getLogger("agentcmd.engine.worker")
MAX_IDLE_WAIT_S = 1.0
MAX_ENGINE_ATTEMPTS = 5       # an item the engine itself fails on this often is given up
ENGINE_RETRY_MS = 200         # doubled per attempt
OUTAGE_RETRY_S = 1.0          # while the database cannot be written, try again this often
# Store errors that pass by themselves: a full or read-only disk, a lock held by another process (a backup).
OUTAGE = (DatabaseUnwritableError, DatabaseLockedError)


class Worker:
    def __init__(self, store: Store, executor: Executor, dispatcher: Dispatcher, clock: Clock,
                 concurrency: int = 64, sweep_s: float = 30.0) -> None:
        self.store = store
        self.executor = executor
        self.clock = clock
        self.concurrency = concurrency
        # Slots the queue never fills: kept for events a sender just posted (``free_slots``), so a
        # run someone starts by hand does not wait behind a 10,000-event backlog being dispatched.
        self.reserved_for_senders = concurrency // 8
        self.sweep_s = sweep_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._stranded: set[int] = set()
        self._last_sweep = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_free = asyncio.Event()
        self._kinds = kinds.KindContext(store, executor, dispatcher, clock, self.wake)
        executor.on_new_work = self.wake

    def wake(self) -> None:
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def free_slots(self) -> int:
        """Slots for events just accepted (``api/events.py`` dispatches them at once when they fit)."""
        return 0 if self._stopping else max(0, self.concurrency - len(self._tasks))

    async def run(self) -> None:
        """Lease and start items until ``stop()``; never spins (waits for a slot, a wake-up or a due time)."""
        self._last_sweep = self.clock()
        while not self._stopping:
            try:
                await self._turn()
            except OUTAGE as exc:
                # The disk is full or read-only (logged once by the store), or another process holds
                # the database's lock. Nothing is lost: leases we could not give back are kept in
                # ``_stranded``. Try again in a while.
                if isinstance(exc, DatabaseLockedError):
                    log.warning("%s; retrying in %g s", exc.what, OUTAGE_RETRY_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), OUTAGE_RETRY_S)

    async def _turn(self) -> None:
        debug_triggers.hit("worker_turn")
        free = self.concurrency - self.reserved_for_senders - len(self._tasks)
        if free <= 0:
            # Every slot is busy (tasks handed to us directly count too):
            # wait for one to free up rather than polling the queue.
            self._slot_free.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_free.wait(), MAX_IDLE_WAIT_S)
            return
        self._wake.clear()
        if self._stranded:
            await self._requeue_stranded()
        items = await self.store.lease_due(self.clock(), free, self.executor.lease_until())
        for item in items:
            self._spawn(self._handle(item))
        if len(items) == free:
            return              # there may be more due: lease again once slots free up
        if self.clock() - self._last_sweep > self.sweep_s * 1000:
            self._last_sweep = self.clock()
            n = await self.store.requeue_leases(self._last_sweep)
            if n:
                log.warning("requeued %d queue items whose lease ran out", n)
            now = self._last_sweep
            await self.store.write(lambda c: flow.prune_marks_txn(c, now))
        nxt = await self.store.next_ready_at()
        timeout = MAX_IDLE_WAIT_S
        if nxt is not None:
            timeout = min(timeout, (nxt - self.clock()) / 1000)
        if timeout > 0 and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        elif timeout <= 0:
            await asyncio.sleep(0)   # due now (it appeared after our lease): let others run, then lease

    def _strand(self, item: QueueItem) -> None:
        """A call whose result could not be saved (the disk failed us): run it again after the outage.

        Its lease cannot be given back while writes fail, so it is kept here
        and requeued by the first turn that can write; the step runs again,
        as after a crash (at least once).
        """
        log.warning("queue item %s (%s, run %s) could not be saved; it runs again once the database can be "
                    "written", item.id, item.kind, item.run_id)
        self._stranded.add(item.id)

    async def _requeue_stranded(self) -> None:
        ids = sorted(self._stranded)
        await self.store.write(lambda c: queue.release_leases_txn(c, ids))
        self._stranded.difference_update(ids)
        log.info("requeued %d queue items left over from a database outage", len(ids))
        self.executor.limits.recheck()

    async def stop(self, grace_s: float) -> int:
        """Stop leasing, interrupt SDK calls in flight; wait up to ``grace_s`` for the rest. Returns tasks cut off."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        self._slot_free.set()
        interrupted = self.executor.interrupt_calls()
        if interrupted:
            log.info("interrupted %d SDK calls in flight; they run again, same attempt, when the engine starts",
                     interrupted)
        if not self._tasks:
            return 0
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
        return len(pending)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("queue task failed", exc_info=task.exception())

    def dispatch_now(self, items: list[QueueItem]) -> None:
        """Run items already leased to us (events just accepted) in their own tasks."""
        for item in items:
            self._spawn(self._handle(item))

    def submit(self, contexts: list[CallContext]) -> None:
        """Run calls already leased to us (by ingest or a commit) in their own tasks."""
        for ctx in contexts:
            self._spawn(self._chain([ctx]))

    async def _handle(self, item: QueueItem) -> None:
        runlog.bind(item.run_id, item.step_id)     # run_id/step_id on every log line about this item
        try:
            contexts = await kinds.route(self._kinds, item)
        except asyncio.CancelledError:
            raise
        except OUTAGE:
            self._strand(item)
            return
        except Exception:
            log.exception("queue item %s (%s) failed; it will be retried", item.id, item.kind)
            await self._release(item)
            return
        await self._chain(contexts)

    async def _release(self, item: QueueItem) -> None:
        """An engine bug hit this item: retry it with backoff, then give up on it.

        Giving up fails the item's run with an engine error (or drops an
        event dispatch), so one poison row cannot loop forever.
        """
        now = self.clock()
        retry = now + ENGINE_RETRY_MS * 2 ** item.attempt

        def txn(conn: sqlite3.Connection) -> None:
            if item.attempt + 1 < MAX_ENGINE_ATTEMPTS:
                queue.retry_later_txn(conn, item.id, retry)
                return
            queue.ack_txn(conn, item.id)
            if item.run_id:
                output = json.dumps({"name": "EngineError", "code": "engine_error",
                                     "message": "the engine failed on this run repeatedly (see its log)"})
                runs.finish_run_txn(conn, item.run_id, RunStatus.FAILED, output,
                                    f"engine error on queue item {item.id} ({item.kind})", now=now)

        if item.attempt + 1 >= MAX_ENGINE_ATTEMPTS:
            log.error("giving up on queue item %s (%s, run %s) after %d engine errors", item.id, item.kind,
                      item.run_id, MAX_ENGINE_ATTEMPTS)
        with contextlib.suppress(Exception):
            await self.store.write(txn)
        self.wake()

    async def _chain(self, contexts: list[CallContext]) -> None:
        """Run the first context inline and hand the rest to new tasks, repeatedly."""
        while contexts and not self._stopping:
            first, rest = contexts[0], contexts[1:]
            if rest:
                self.submit(rest)
            try:
                contexts = await self.executor.call(first)
            except asyncio.CancelledError:
                raise
            except OUTAGE:
                self._strand(first.item)
                return
            except Exception:
                log.exception("call for run %s failed inside the engine; retrying", first.run_id)
                await self._release(first.item)
                return
        if contexts:       # stopping: calls leased to us that never went out go back as they are
            ids = [c.item.id for c in contexts]
            with contextlib.suppress(Exception):
                await self.store.write(lambda c: queue.release_leases_txn(c, ids))
