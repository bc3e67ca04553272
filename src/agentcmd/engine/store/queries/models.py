"""The rows the read queries return, the runs filter, and their JSON shape.

Rows are frozen dataclasses with times in integer milliseconds (as stored);
``as_json`` turns them into the dashboard's JSON twins' shape, with RFC 3339
times like the REST API. ``RunFilter`` is the one runs filter: the
dashboard's ``/runs`` and the REST API's ``GET /v1/runs`` build it from the
same query parameters (``status``, ``function``, ``since``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from agentcmd.errors import InputError

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
    resume_of: str | None = None  # the run this one resumes (flow/resume.py)
    resumed_as: list[str] = field(default_factory=list)  # runs that resume this one



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
    reason: str | None = None  # parked/delayed: why, as flowtext.py words it


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
    """Which runs a list shows; hashable, so the dashboard's count cache can key on it."""

    status: str | tuple[str, ...] | None = None  # one status, or several (a run with any of them)
    function: str | None = None  # function slug, or its uuid
    since: int | None = None  # created_at >= since (ms)
    until: int | None = None  # created_at < until (ms)
    ended_after: int | None = None  # ended_at > ended_after (ms): runs that ended since a cursor

    @property
    def statuses(self) -> tuple[str, ...]:
        if self.status is None:
            return ()
        return (self.status,) if isinstance(self.status, str) else self.status


_RELATIVE = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_since(value: str | None, now_ms: int) -> int | None:
    """``15m``/``1h``/``7d`` ago, or an ISO date/time (UTC if no zone); None for empty."""
    if not value:
        return None
    text = value.strip()
    m = _RELATIVE.match(text)
    if m:
        return now_ms - int(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"'since' must be like 15m, 1h, 7d or an ISO date such as 2026-01-31T12:00, not {text!r}",
                         "pick a value from the 'since' list") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def parse_statuses(values: list[str]) -> tuple[str, ...]:
    """Run statuses from query parameters (repeated and/or comma-separated, any case), canonical and in order."""
    by_lower = {s.lower(): s for s in RUN_STATUSES}
    out: list[str] = []
    for raw in values:
        for part in raw.split(","):
            name = part.strip()
            if not name:
                continue
            if name.lower() not in by_lower:
                raise InputError(f"unknown status {name!r}", f"use one of {', '.join(RUN_STATUSES)}")
            if by_lower[name.lower()] not in out:
                out.append(by_lower[name.lower()])
    return tuple(out)


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
