"""Rows and commands that cross the store boundary: frozen, typed, no SQL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class QueueKind(StrEnum):
    """What a queue row asks the worker to do (inngest ``queue/kind.go``)."""

    EVENT = "event"                # match one stored event against triggers and pauses
    START = "start"                # first call of a run (discovery)
    STEP = "step"                  # a discovery or targeted call, or a retry of one
    SLEEP = "sleep"                # a sleep's wake-up: memo null, then discovery
    WAIT_TIMEOUT = "wait_timeout"  # wait_for_event / invoke expired: memo null or timeout error
    DEBOUNCE = "debounce"          # debounce period over: start the run with the last event
    BATCH = "batch"                # batch timeout: start the run with the events so far
    CRON = "cron"                  # a cron tick: emit inngest/scheduled.timer for one function
    RUN_TIMEOUT = "run_timeout"    # timeouts.start / timeouts.finish: cancel a run that took too long


class RunStatus(StrEnum):
    """Run statuses as REST shows them (GraphQL upper-cases them)."""

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    SKIPPED = "Skipped"

    @property
    def final(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED)


DISCOVERY = "step"  # the stepId of a request that targets no step


@dataclass(frozen=True)
class QueueItem:
    id: int
    kind: QueueKind
    run_id: str | None
    step_id: str | None
    ready_at: int
    attempt: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class CallContext:
    """Everything one SDK call needs, read in the transaction that leased the item."""

    item: QueueItem
    run_id: str
    function_slug: str
    url: str
    event_json: str                # canonical JSON of the first triggering event
    events_json: str               # canonical JSON list of all triggering events
    steps: dict[str, str]          # hashed step id -> canonical memo JSON, in stack order
    force_plan: bool
    max_attempts: int
    status: str
    wait_since: int | None = None  # the run waits for its app since then (store/waits.py)

    @property
    def first_event(self) -> dict[str, Any]:
        import json

        value = json.loads(self.event_json)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class MemoWrite:
    """A step result to memoize (exactly once per (run, step))."""

    step_id: str
    name: str
    op: str
    memo: Any
    failed: bool = False
    attempt: int = 0
    started_at: int = 0


@dataclass(frozen=True)
class NewItem:
    kind: QueueKind
    step_id: str | None
    ready_at: int
    payload: dict[str, Any] = field(default_factory=dict)
    dedupe: str | None = None


@dataclass(frozen=True)
class NewPause:
    kind: str                      # wait | invoke | cancel
    step_id: str | None
    event_name: str
    expression: str | None
    correlation: str | None
    expires_at: int
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewEvent:
    internal_id: str
    name: str
    body: dict[str, Any]
    user_id: str | None
    ts: int


@dataclass
class Outcome:
    """What one SDK answer does to a run; applied in one transaction.

    ``memos`` complete steps; ``planned`` become targeted calls; ``waiting``
    are step ids parked until a sleep/pause resolves (with their queue rows
    in ``items`` and pauses in ``pauses``). ``retry_at`` re-queues the same
    item with ``attempt + 1``. ``finish`` ends the run.
    """

    memos: list[MemoWrite] = field(default_factory=list)
    planned: list[tuple[str, bool]] = field(default_factory=list)   # (step id, race)
    waiting: list[str] = field(default_factory=list)
    items: list[NewItem] = field(default_factory=list)
    pauses: list[NewPause] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    force_plan: bool = False
    retry_at: int | None = None
    finish: tuple[RunStatus, str | None, str | None] | None = None   # status, output, error
    history: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # type, step, detail
    called_at: int | None = None    # when the SDK call that produced this began: the steps' and run's start


@dataclass(frozen=True)
class RunSpec:
    """A run to create for a matched function."""

    run_id: str
    function_slug: str
    app_id: str
    events: list[dict[str, Any]]
    event_id: str
    max_attempts: int
    parent: str | None = None
    idem_key: str | None = None
    cancel_pauses: tuple[NewPause, ...] = ()
    start_at: int | None = None            # throttled: first call not before this time
    start_timeout_ms: int | None = None    # timeouts.start: cancel if not started by then
    finish_timeout_ms: int | None = None   # timeouts.finish: cancel if not finished by then


# -- how values become the text stored in rows ---------------------------------------------

def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:
    from agentcmd.engine.protocol import canonical as _canonical

    return _canonical(value)
