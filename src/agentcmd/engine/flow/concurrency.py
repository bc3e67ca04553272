"""Concurrency limits: how many of a function's step calls may be in flight at once.

Inngest counts *executing step requests* (an SDK call in progress), not
runs: a sleeping or waiting run holds no slot. A function declares up to
two limits (``concurrency: [{limit, key?, scope?}]``); each one names a
slot key:

* ``scope: fn`` (default): per function, and per value of ``key`` if set;
* ``scope: env`` / ``account``: per value of ``key`` across every function
  of the engine (one engine is one environment and one account), so two
  functions declaring ``key: '"openai"'`` share one limit.

A call may start only if every one of its keys has room. The gate sits in
front of ``Executor.call`` (the single place an SDK call starts):

* Room: the call counts against its keys until its outcome is committed,
  so the run's next step, leased back by that commit, takes the slot over
  in the same event-loop turn (older runs finish first, as Inngest scores
  a run's later steps by the run's start time).
* No room: the leased queue row is *parked*: given back to the queue with a
  far ``ready_at`` (``PARK_MS``, a durable safety net) and a ``flow_waiting``
  row (migration 0003) saying which key it waits for and its ``score``
  (run creation time minus its priority shift). Nothing polls.
* A slot frees: the best-scored waiter of that key is unparked (its
  original ``ready_at`` back) and *reserved* the slot, so a newcomer does
  not take it before the worker leases it. Unparking reads the
  ``(key, score)`` index: no scan of the backlog, whatever its size.

Counts of calls in flight live in memory: in-flight calls die with the
process. Waiting calls live in SQLite (their rows: ``store/flow.py``): at
startup (``store.flow.recover_txn``, from ``Store.requeue_leases``) each key
gets up to its limit of waiters back, the others stay parked until slots free.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agentcmd.engine import triggers
from agentcmd.engine.flow import pause as pausing
from agentcmd.engine.flow import priority
from agentcmd.engine.store import flow as flow_rows
from agentcmd.engine.store import queries

if TYPE_CHECKING:
    from agentcmd.engine.functions import Function
    from agentcmd.engine.store import Store
    from agentcmd.engine.store.models import CallContext

log = logging.getLogger("agentcmd.engine.flow.concurrency")

PARK_MS = 3600 * 1000          # a parked row re-checks itself after this long even if no slot frees
RESERVE_MS = 10_000            # how long an unparked row's slot is kept for it
MAX_LIMITS = 2                 # Inngest accepts at most two concurrency entries
SCOPES = ("fn", "env", "account")
_CACHE_RUNS = 4096
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class Slot:
    """One concurrency key a call must find room under."""

    key: str
    limit: int


def slots_for(slug: str, config: dict[str, Any], event: dict[str, Any]) -> list[Slot]:
    """The keys a call of function ``slug`` counts against, for its run's first event.

    A ``key`` expression that fails to evaluate (a missing field) yields the
    empty value, so such runs share one slot rather than escaping the limit.
    """
    out: list[Slot] = []
    for entry in (config.get("concurrency") or [])[:MAX_LIMITS]:
        if not isinstance(entry, dict):
            continue
        try:
            limit = int(entry.get("limit") or 0)
        except (TypeError, ValueError):
            continue
        if limit <= 0:
            continue
        expr = entry.get("key")
        value = ""
        if isinstance(expr, str) and expr:
            value = triggers.evaluate_key(expr, {"event": event}) or ""
        scope = str(entry.get("scope") or "fn")
        key = f"fn:{slug}:{value}" if scope not in ("env", "account") else f"{scope}:{value}"
        out.append(Slot(key, limit))
    return out


def run_created_ms(run_id: str) -> int:
    """The timestamp part of a ULID run id (its first 10 Crockford base-32 characters)."""
    ms = 0
    for ch in run_id[:10].upper():
        idx = _CROCKFORD.find(ch)
        if idx < 0:
            return 0
        ms = ms * 32 + idx
    return ms



class FunctionLookup(Protocol):
    """Where the gate finds a function's config (the engine's ``Registry``), without importing it."""

    def get(self, slug: str) -> Function | None: ...


# -- the gate ------------------------------------------------------------------------------------

class ConcurrencyGate:
    """In-flight counts per key, parking and unparking; see the module docstring."""

    def __init__(self, store: Store, registry: FunctionLookup, clock: Callable[[], int],
                 wake: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.wake = wake
        self.in_flight: dict[str, int] = {}
        self.limits: dict[str, int] = {}
        self.reserved: dict[int, tuple[str, int]] = {}     # queue id -> (key, expires at)
        self.parked = 0                                     # calls parked by this process (for tests, stats)
        self._waiting: set[str] | None = None               # keys with parked rows (loaded on first use)
        self.paused: set[str] = set()                       # paused function slugs (flow/pause.py)
        self._parking: dict[str, int] = {}                  # park writes not yet committed, per key
        self._unparking: dict[str, int] = {}                # unpark writes not yet committed, per key
        self._runs: OrderedDict[str, tuple[list[Slot], int]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def _plan(self, ctx: CallContext) -> tuple[list[Slot], int]:
        """(slots, score) for a call's run; computed once per run (CEL is not free)."""
        hit = self._runs.get(ctx.run_id)
        if hit is not None:
            self._runs.move_to_end(ctx.run_id)
            return hit
        fn = self.registry.get(ctx.function_slug)
        plan: tuple[list[Slot], int] = ([], 0)
        if fn is not None and fn.config.get("concurrency"):
            event = ctx.first_event
            slots = slots_for(fn.slug, fn.config, event)
            score = run_created_ms(ctx.run_id) - priority.factor_s(fn.config, event) * 1000
            plan = (slots, score)
        self._runs[ctx.run_id] = plan
        if len(self._runs) > _CACHE_RUNS:
            self._runs.popitem(last=False)
        return plan

    def _taken(self, key: str, now: int, exclude: int | None) -> int:
        held = sum(1 for item_id, (k, until) in self.reserved.items()
                   if k == key and until > now and item_id != exclude)
        return self.in_flight.get(key, 0) + held + self._unparking.get(key, 0)

    async def _load(self) -> None:
        def txn(conn: sqlite3.Connection) -> tuple[set[str], set[str]]:
            return flow_rows.waiting_keys_txn(conn), queries.paused_slugs(conn)

        self._waiting, self.paused = await self.store.read(txn)

    async def acquire(self, ctx: CallContext) -> list[str] | None:
        """Take a slot under every key of this call; None if it was parked instead."""
        if self._waiting is None:
            await self._load()
        if ctx.function_slug in self.paused:
            await self._park(ctx, Slot(pausing.paused_key(ctx.function_slug), 0), run_created_ms(ctx.run_id))
            return None
        slots, score = self._plan(ctx)
        if not slots:
            return []
        now = self.clock()
        item = ctx.item
        mine = self.reserved.pop(item.id, None)
        for slot in slots:
            self.limits[slot.key] = slot.limit
        full = next((s for s in slots if self._taken(s.key, now, item.id) >= s.limit), None)
        if full is None:
            for s in slots:
                self.in_flight[s.key] = self.in_flight.get(s.key, 0) + 1
            return [s.key for s in slots]
        if mine is not None and mine[0] != full.key:
            self._schedule_check([mine[0]])     # the slot kept for us goes to the next waiter
        await self._park(ctx, full, score)
        return None

    async def _park(self, ctx: CallContext, slot: Slot, score: int) -> None:
        assert self._waiting is not None
        item, until = ctx.item, self.clock() + PARK_MS
        self._waiting.add(slot.key)
        self._parking[slot.key] = self._parking.get(slot.key, 0) + 1
        try:
            await self.store.write(lambda c: flow_rows.park_txn(c, item.id, slot.key, slot.limit, score,
                                                                   item.ready_at, until))
        finally:
            self._parking[slot.key] -= 1
        self.parked += 1

    async def pause(self, slug: str, now: int) -> bool:
        """Pause a function: its next calls park (in-flight ones finish). False if already paused."""
        if self._waiting is None:
            await self._load()
        changed = await self.store.write(lambda c: flow_rows.pause_txn(c, slug, now))
        self.paused.add(slug)
        return changed

    async def unpause(self, slug: str) -> tuple[bool, int]:
        """Unpause: every call parked by the pause is due again. -> (was paused, calls resumed)."""
        if self._waiting is None:
            await self._load()
        key, now = pausing.paused_key(slug), self.clock()

        def txn(conn: sqlite3.Connection) -> tuple[bool, int]:
            return flow_rows.unpause_txn(conn, slug), len(flow_rows.unpark_txn(conn, key, 2**31, now))

        self.paused.discard(slug)
        changed, resumed = await self.store.write(txn)
        if resumed:
            self.wake()
        return changed, resumed

    def release(self, keys: list[str]) -> None:
        """A call's outcome is committed: its slots free up for waiters (after this loop turn)."""
        for k in keys:
            left = self.in_flight.get(k, 0) - 1
            if left > 0:
                self.in_flight[k] = left
            else:
                self.in_flight.pop(k, None)
                if not self._waiting or k not in self._waiting:
                    self.limits.pop(k, None)     # keys can be per user: keep only live ones
        if keys and self._waiting and any(k in self._waiting for k in keys):
            self._schedule_check(keys)

    def recheck(self) -> None:
        """After a database outage: unpark writes may have failed, so look at every waiting key again."""
        if self._waiting:
            self._schedule_check(sorted(self._waiting))

    def _schedule_check(self, keys: list[str]) -> None:
        # After this loop turn: a run's next call, leased back by the commit that
        # ended this one, takes the slot over first.
        asyncio.get_running_loop().call_soon(self._check, list(keys))

    def _check(self, keys: list[str]) -> None:
        now = self.clock()
        for item_id in [i for i, (_, until) in self.reserved.items() if until <= now]:
            del self.reserved[item_id]
        for key in keys:
            if self._waiting is None or key not in self._waiting:
                continue
            free = self.limits.get(key, 0) - self._taken(key, now, None)
            if free <= 0:
                continue
            self._unparking[key] = self._unparking.get(key, 0) + free
            task = asyncio.ensure_future(self._unpark(key, free, now))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _unpark(self, key: str, count: int, now: int) -> None:
        try:
            ids = await self.store.write(lambda c: flow_rows.unpark_txn(c, key, count, now))
        except Exception:
            log.exception("could not unpark calls waiting on concurrency key %s", key)
            ids = []
        finally:
            self._unparking[key] -= count
            if self._unparking[key] <= 0:
                del self._unparking[key]
        for item_id in ids:
            self.reserved[item_id] = (key, now + RESERVE_MS)
        if ids:
            asyncio.get_running_loop().call_later(RESERVE_MS / 1000 + 0.05, self._check, [key])
            self.wake()
        if len(ids) < count and not self._parking.get(key) and self._waiting is not None:
            self._waiting.discard(key)
