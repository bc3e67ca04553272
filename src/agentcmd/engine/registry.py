"""Registered apps and their functions: validation, the in-memory registry, syncing.

Apps arrive two ways (reference §4): the SDK POSTs ``/fn/register`` (after
the engine PUTs its serve URL, or on its own). ``register()`` validates the
body, stores the app and replaces its functions in one transaction (functions
it no longer lists are archived and stop matching), reschedules its crons,
and refreshes the ``Registry`` that trigger matching reads without touching
SQLite. ``appsync.Syncer`` sends the engine-initiated PUTs for ``-u/--sdk-url``.

A sync never leaves a gap in matching: the transaction that stores an app's
functions also reads back the full active list, and the registry swaps to it
in one assignment before the register request is answered (a generation
number keeps an older list from replacing a newer one when two syncs race).
So an event accepted after the SDK's sync returned is matched against the
new functions, and one accepted during the sync against the old or the new,
never against nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import Any

from agentcmd.engine import triggers
from agentcmd.engine.flow import validate
from agentcmd.engine.functions import Function
from agentcmd.engine.store import Store, apps, now_ms, queries
from agentcmd.errors import InputError

log = logging.getLogger("agentcmd.engine.registry")
DEFAULT_RETRIES = 4
MAX_RETRIES = 20
_NS = uuid.UUID("6f1f1b1e-5d2a-4c1e-9a57-a9e0c5b7d101")


@dataclass(frozen=True)
class _Index:
    """One consistent view of the active functions (swapped whole, never edited)."""

    functions: dict[str, Function]
    by_event: dict[str, list[Function]]
    wildcard: list[Function]


def _index(functions: list[Function]) -> _Index:
    by_event: dict[str, list[Function]] = {}
    wildcard: list[Function] = []
    for f in functions:
        for pattern, _ in f.event_triggers:
            if "*" in pattern:
                if f not in wildcard:
                    wildcard.append(f)
            else:
                bucket = by_event.setdefault(pattern, [])
                if f not in bucket:
                    bucket.append(f)
    return _Index({f.slug: f for f in functions}, by_event, wildcard)


@dataclass
class Registry:
    """Active functions by slug, with an index by exact event name.

    The three views live in one immutable ``_Index`` swapped in a single
    assignment, so a reader never sees the functions of one sync with the
    event index of another. ``generation`` orders the lists read inside
    write transactions: ``install`` ignores a list older than the one in place.
    """

    _view: _Index = field(default_factory=lambda: _index([]))
    generation: int = 0
    _next_generation: int = 0

    @property
    def functions(self) -> dict[str, Function]:
        return self._view.functions

    @property
    def by_event(self) -> dict[str, list[Function]]:
        return self._view.by_event

    @property
    def wildcard(self) -> list[Function]:
        return self._view.wildcard

    def replace(self, functions: list[Function]) -> None:
        self._view = _index(functions)

    def take_generation(self) -> int:
        """A number for a list read inside a write transaction (writes are serialised: it orders them)."""
        self._next_generation += 1
        return self._next_generation

    def install(self, generation: int, functions: list[Function]) -> None:
        """Swap to ``functions`` unless a list read by a later transaction is already in place."""
        if generation > self.generation:
            self.generation = generation
            self.replace(functions)

    def candidates(self, name: str) -> list[Function]:
        view = self._view
        return [*view.by_event.get(name, []), *view.wildcard]

    def get(self, slug: str) -> Function | None:
        return self.functions.get(slug)

    async def load(self, store: Store) -> None:
        """At start, before any sync can race it."""
        functions = await store.read(active_functions)
        self.install(self.take_generation(), functions)


def active_functions(conn: sqlite3.Connection) -> list[Function]:
    """Every active function, read with ``conn`` (inside the caller's transaction)."""
    return [parse_function(r["config"], r["app_id"]) for r in queries.list_functions(conn)]


def parse_function(cfg: dict[str, Any], app_id: str) -> Function:
    """FunctionConfig -> Function; raises InputError naming the bad field."""
    slug = cfg.get("id")
    if not isinstance(slug, str) or not slug:
        raise InputError("function config without an 'id'", "upgrade the SDK; every function needs an id")
    step = ((cfg.get("steps") or {}).get("step") or {})
    if not step and isinstance(cfg.get("steps"), dict) and cfg["steps"]:
        step = next(iter(cfg["steps"].values()))
    url = ((step.get("runtime") or {}).get("url"))
    if not isinstance(url, str) or not url:
        raise InputError(f"function {slug!r} has no steps.step.runtime.url", "re-sync the app with a current SDK")
    retries = (step.get("retries") or {}).get("attempts", DEFAULT_RETRIES)
    if not isinstance(retries, int) or retries < 0:
        raise InputError(f"function {slug!r}: retries must be a non-negative integer", "fix 'retries'")
    retries = min(retries, MAX_RETRIES)
    events: list[tuple[str, str | None]] = []
    crons: list[str] = []
    for trig in cfg.get("triggers") or []:
        if not isinstance(trig, dict):
            raise InputError(f"function {slug!r}: a trigger is not an object", "fix the triggers")
        if trig.get("event"):
            expr = trig.get("expression") or None
            if expr and (err := triggers.check_expression(expr)):
                raise InputError(f"function {slug!r}: invalid trigger expression {expr!r}: {err}",
                                 "fix the CEL expression")
            events.append((str(trig["event"]), expr))
        elif trig.get("cron"):
            if err := triggers.check_cron(str(trig["cron"])):
                raise InputError(f"function {slug!r}: invalid cron {trig['cron']!r}: {err}",
                                 "use 5-field cron syntax, optionally prefixed with TZ=Zone")
            crons.append(str(trig["cron"]))
    return Function(slug=slug, uuid=str(uuid.uuid5(_NS, slug)), app_id=app_id, name=str(cfg.get("name") or slug),
                    url=url, config=cfg, max_attempts=retries + 1, event_triggers=tuple(events), crons=tuple(crons))


@dataclass(frozen=True)
class RegisterResult:
    app_id: str
    modified: bool
    functions: int


async def register(store: Store, registry: Registry, body: Any) -> RegisterResult:
    """Validate a ``/fn/register`` body and store the app; raise InputError on bad input."""
    if not isinstance(body, dict):
        raise InputError("register body must be a JSON object", "send the SDK's registration payload")
    app_id = body.get("appname") or body.get("appName") or body.get("app_name")
    url = body.get("url")
    if not isinstance(app_id, str) or not app_id:
        raise InputError("register body has no 'appname'", "set the app id on the SDK client")
    if not isinstance(url, str) or not url:
        raise InputError("register body has no 'url'", "the SDK must send its serve URL")
    raw_functions = body.get("functions") or []
    if not isinstance(raw_functions, list):
        raise InputError("'functions' must be a list", "send the SDK's registration payload")
    try:
        functions = [parse_function(cfg, app_id) for cfg in raw_functions if isinstance(cfg, dict)]
        validate.check_functions(functions)
    except InputError as err:
        # The sync failed: say so on the app (GET /v1/apps, dashboard); its functions stay as they were.
        failed_at, what = now_ms(), err.what
        await store.write(lambda c: apps.record_sync_error_txn(c, app_id, url, what, failed_at))
        raise
    checksum = hashlib.sha256(json.dumps([url, raw_functions], sort_keys=True).encode()).hexdigest()
    rows = [(f.slug, f.uuid, f.name, f.url, json.dumps(f.config)) for f in functions]
    now = now_ms()

    def txn(conn: sqlite3.Connection) -> tuple[bool, int, list[Function]]:
        if apps.app_checksum_txn(conn, app_id) == checksum:
            apps.mark_synced_txn(conn, app_id, now)
            # Unchanged, but an earlier sync of the same list may not have reached the registry yet.
            return False, registry.take_generation(), active_functions(conn)
        apps.upsert_app_txn(conn, app_id, url, str(body.get("sdk") or ""), str(body.get("framework") or ""),
                            checksum, rows, now)
        for f in functions:
            apps.schedule_crons_txn(conn, f.slug, [(spec, triggers.next_cron_ms(spec, now)) for spec in f.crons])
        return True, registry.take_generation(), active_functions(conn)

    # The registry is swapped before this returns (no await in between): the SDK's sync, and so the
    # caller's, only answers once events match the new functions.
    modified, generation, active = await store.write(txn)
    registry.install(generation, active)
    return RegisterResult(app_id, modified, len(functions))


def normalize_url(url: str) -> str:
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url
