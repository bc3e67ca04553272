"""Cron schedules of a workflow: ``define_workflow(cron=..., timezone=...)``.

A schedule becomes an ``inngest.TriggerCron`` next to the workflow's event
trigger, so a scheduled workflow can still be started by hand. A time zone
travels the way Inngest reads it, as a ``TZ=Zone`` prefix of the cron
expression; the embedded engine honours it (``engine/triggers.py``).

Everything is checked when the workflow file is imported, with the same
library the engine uses (croniter) and ``zoneinfo``, so a typo is a
``WorkflowDefinitionError`` at discovery, not a schedule that never fires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from agentcmd.errors import WorkflowDefinitionError

TIMER_EVENT = "inngest/scheduled.timer"
"""The event a cron tick starts a run with; its data is timing, so a scheduled run's input is empty."""

EXAMPLE = 'e.g. cron="0 9 * * 1-5" (minute hour day-of-month month day-of-week)'


def check(workflow_id: str, cron: str | Sequence[str] | None,
          timezone: str | None) -> tuple[tuple[str, ...], str | None]:
    """The workflow's cron expressions (a tuple, maybe empty) and its time zone, checked."""

    def bad(what: str, fix: str) -> WorkflowDefinitionError:
        return WorkflowDefinitionError(f"workflow {workflow_id!r}: {what}", fix)

    if cron is None:
        if timezone is not None:
            raise bad(f"timezone={timezone!r} is given without a cron schedule",
                      'add cron="0 9 * * 1-5", or drop timezone')
        return (), None
    exprs = [cron] if isinstance(cron, str) else list(cron) if isinstance(cron, Sequence) else None
    if not exprs:
        raise bad(f"cron must be a cron expression or a non-empty list of them, got {cron!r}", EXAMPLE)
    if timezone is not None:
        _zone(timezone, bad)
    checked: list[str] = []
    for expr in exprs:
        if not isinstance(expr, str) or not expr.strip():
            raise bad(f"cron must be a cron expression or a list of them, got {expr!r}", EXAMPLE)
        text = " ".join(expr.split())
        if text.upper().startswith(("TZ=", "CRON_TZ=")):
            raise bad(f"cron {expr!r} carries its own time zone", 'write the zone once as timezone="Europe/Paris"')
        fields = text.split(" ")
        if not (text.startswith("@") and len(fields) == 1) and len(fields) != 5:
            raise bad(f"cron {expr!r} has {len(fields)} fields, not 5", EXAMPLE)
        if not croniter.is_valid(text):
            raise bad(f"cron {expr!r} is not a valid cron expression", EXAMPLE)
        if text in checked:
            raise bad(f"cron {expr!r} is listed twice", "list each schedule once")
        checked.append(text)
    return tuple(checked), timezone


def _zone(timezone: object, bad: Callable[[str, str], WorkflowDefinitionError]) -> ZoneInfo:
    fix = 'use an IANA time zone name, e.g. timezone="Europe/Paris" or "UTC"'
    if not isinstance(timezone, str) or not timezone.strip() or " " in timezone:
        raise bad(f"timezone must be a time zone name, got {timezone!r}", fix)
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad(f"unknown timezone {timezone!r}", fix) from None


def trigger_specs(crons: Sequence[str], timezone: str | None) -> list[str]:
    """The cron strings sent to the engine: ``TZ=Zone expr`` when a zone is set (Inngest's syntax)."""
    return [f"TZ={timezone} {expr}" if timezone else expr for expr in crons]


def next_runs(crons: Sequence[str], timezone: str | None, now: datetime | None = None, count: int = 3) -> list[str]:
    """The next ``count`` fire times over every schedule, as ISO 8601 UTC strings, soonest first."""
    if not crons:
        return []
    zone = ZoneInfo(timezone) if timezone else UTC
    start = (now or datetime.now(UTC)).astimezone(zone)
    times: set[datetime] = set()
    for expr in crons:
        it = croniter(expr, start)
        for _ in range(count):
            times.add(it.get_next(datetime).astimezone(UTC))
    return [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in sorted(times)[:count]]
