"""What the dashboard reads and does, as two small Protocols, and the rows they return.

The views depend on these and nothing else, so they can be built and tested
against a real SQLite file before (and independently of) the engine's
worker; ``queries.py`` is the SQLite implementation of ``DashboardReader``,
``actions.py`` adapts the engine's commands to ``DashboardActions``.

Rows are frozen dataclasses with times in integer milliseconds (as stored);
``as_json`` turns them into the JSON twins' shape, with RFC 3339 times like
the REST API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from agentcmd.engine.flow.replay import ReplayRequest

T = TypeVar("T")

RUN_STATUSES = ("Queued", "Running", "Completed", "Failed", "Cancelled", "Skipped")
FINAL_STATUSES = frozenset({"Completed", "Failed", "Cancelled", "Skipped"})


@dataclass(frozen=True)
class ErrorInfo:
    name: str
    message: str
    stack: str = ""


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    function_slug: str
    function_name: str
    app_id: str
    event_id: str
    event_name: str
    status: str
    attempt: int
    created_at: int
    started_at: int | None
    ended_at: int | None
    replay_of: str | None = None  # the run this one replays (flow/replay.py)
    waiting: str | None = None  # "waiting: concurrency limit 10 on key ..." while flow control holds it
    # {"app_id", "url", "since" (ms epoch), "reason"} while the run waits for an app that does not
    # answer (engine/store/waits.py; the same object as REST's waiting_for_app); ``waiting`` says it in words
    waiting_for_app: dict[str, Any] | None = None

    @property
    def duration_ms(self) -> int | None:
        start = self.started_at or self.created_at
        return None if self.ended_at is None else max(0, self.ended_at - start)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    function_id: str | None
    events: list[Any]
    output: Any  # parsed SDK body for Completed runs
    error: ErrorInfo | None
    max_attempts: int
    parent: str | None
    replays: list[str] = field(default_factory=list)  # runs that replay this one, oldest first
    function_paused_at: int | None = None



@dataclass(frozen=True)
class StepRow:
    step_id: str
    name: str
    op: str
    status: str  # completed | failed
    attempt: int
    seq: int
    started_at: int
    ended_at: int
    output: Any
    error: ErrorInfo | None

    @property
    def duration_ms(self) -> int:
        """The engine's timing, or the step's own measure when longer.

        The engine only sees a step when its result comes back, so its
        ``started_at`` can equal ``ended_at``; agentcmd's command and agent
        results carry ``duration_s``, measured where the step ran.
        """
        engine = max(0, self.ended_at - self.started_at)
        own = self.output.get("duration_s") if isinstance(self.output, dict) else None
        if isinstance(own, int | float) and not isinstance(own, bool) and own * 1000 > engine:
            return round(own * 1000)
        return engine


@dataclass(frozen=True)
class HistoryRow:
    id: int
    at: int
    type: str
    step_id: str | None
    attempt: int | None
    detail: str | None


@dataclass(frozen=True)
class WaitRow:
    """Something a run is parked on: a sleep until a time, or a wait for an event until a deadline."""

    kind: str  # running | sleep | retry | wait | invoke | parked | delayed
    step_id: str | None
    event_name: str | None
    expression: str | None
    deadline: int
    reason: str | None = None  # parked/delayed: why, as flowstate.py words it


@dataclass(frozen=True)
class EventRow:
    event_id: str
    name: str
    body: Any  # the event as the SDK sees it (None in lists, to keep pages small)
    received_at: int
    run_count: int = 0


@dataclass(frozen=True)
class FunctionRow:
    slug: str
    function_id: str
    name: str
    app_id: str
    triggers: list[str]
    archived: bool
    paused_at: int | None = None


@dataclass(frozen=True)
class SkipRow:
    """An event that started no run of a function, and why (``flow_skips``)."""

    function_slug: str
    function_name: str
    event_id: str
    event_name: str
    reason: str  # rate_limit | paused | singleton
    text: str  # "skipped by rate limit"
    at: int


@dataclass(frozen=True)
class WaitingKey:
    """Calls of a function's runs parked on one key (a concurrency key, or its pause)."""

    key: str
    limit: int
    calls: int
    text: str


@dataclass(frozen=True)
class FunctionDetail:
    """The function page: the function, its flow control and its state, its latest runs."""

    function: FunctionRow
    flow: list[tuple[str, str]]
    waiting: list[WaitingKey]
    skips: list[SkipRow]
    runs: list[RunSummary]

@dataclass(frozen=True)
class AppRow:
    app_id: str
    url: str
    sdk: str
    framework: str
    error: str | None
    synced_at: int
    functions: list[FunctionRow] = field(default_factory=list)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a newest-first list; ``next_cursor`` is the last id shown, or None at the end."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class RunFilter:
    status: str | None = None
    function: str | None = None  # function slug
    since: int | None = None  # created_at >= since (ms)
    until: int | None = None  # created_at < until (ms)


class DashboardReader(Protocol):
    """Read-only queries the dashboard needs; every method is one or two SQL statements."""

    async def list_runs(self, filt: RunFilter, before: str | None, limit: int) -> Page[RunSummary]: ...
    async def count_runs(self, filt: RunFilter) -> dict[str, int]:
        """Runs per status under ``filt`` (ignoring its status): the filter chips' numbers."""
        ...
    async def get_run(self, run_id: str) -> RunDetail | None: ...
    async def run_steps(self, run_id: str) -> list[StepRow]: ...
    async def run_history(self, run_id: str) -> list[HistoryRow]: ...
    async def run_waits(self, run_id: str) -> list[WaitRow]: ...
    async def list_events(self, name: str | None, before: str | None, limit: int) -> Page[EventRow]: ...
    async def get_event(self, event_id: str) -> EventRow | None: ...
    async def event_runs(self, event_id: str) -> list[RunSummary]: ...
    async def list_apps(self) -> list[AppRow]: ...
    async def list_functions(self) -> list[FunctionRow]: ...
    async def get_function(self, slug: str) -> FunctionDetail | None: ...
    async def event_skips(self, event_id: str) -> list[SkipRow]: ...
    async def replay_matches(self, slug: str, request: ReplayRequest) -> int:
        """How many runs a replay would start now; raises ``ReplayInputError`` over the cap."""
        ...


class DashboardActions(Protocol):
    """The dashboard's buttons. Each raises an ``AgentcmdError`` (NotFoundError, ...) on bad input."""

    async def cancel_run(self, run_id: str) -> None: ...
    async def rerun(self, run_id: str) -> str:
        """Send the run's triggering event again; returns the new event id."""
        ...
    async def resync_app(self, app_id: str) -> None: ...
    async def send_event(self, name: str, data: dict[str, Any]) -> list[str]: ...
    async def replay(self, slug: str, request: ReplayRequest) -> list[tuple[str, str]]:
        """Replay the function's runs matching ``request``; (new run id, original run id) pairs."""
        ...
    async def pause_function(self, slug: str) -> bool:
        """Pause the function; False if it already was."""
        ...
    async def unpause_function(self, slug: str) -> tuple[bool, int]:
        """Unpause the function -> (it was paused, calls held by the pause that are due again)."""
        ...


def rfc3339(ms: int | None) -> str | None:
    """Epoch ms as the REST API writes times: ``2026-01-31T12:00:00.000Z``."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_rfc3339(value: str | None) -> int | None:
    """The inverse of ``rfc3339`` (and of the store's ``iso_ms``)."""
    if not value:
        return None
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return round(when.timestamp() * 1000)


_TIME_FIELDS = {"created_at", "started_at", "ended_at", "at", "deadline", "received_at", "synced_at", "paused_at",
                "function_paused_at"}


def as_json(value: Any) -> Any:
    """A row (or list/page of rows) as JSON-ready data: times as RFC 3339, durations added."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            out[f.name] = rfc3339(v) if f.name in _TIME_FIELDS and isinstance(v, int) else as_json(v)
        if isinstance(value, RunSummary | StepRow):
            out["duration_ms"] = value.duration_ms
        return out
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    return value
