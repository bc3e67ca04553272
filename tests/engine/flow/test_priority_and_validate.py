"""Priority factors and sync-time validation as tables."""

from __future__ import annotations

from typing import Any

import pytest

from agentcmd.engine.flow import priority, validate

EVENT = {"name": "e", "data": {"plan": "enterprise", "p": 30, "big": 100000, "f": 2.5}}


@pytest.mark.parametrize(("expr", "factor"), [
    (None, 0),
    ("event.data.plan == 'enterprise' ? 120 : 0", 120),
    ("event.data.plan == 'free' ? 120 : -60", -60),
    ("event.data.p", 30),
    ("event.data.big", 600),          # clamped to Inngest's documented range
    ("-event.data.big", -600),
    ("event.data.f", 0),              # not an integer
    ("'soon'", 0),
    ("true", 0),
    ("event.data.missing", 0),        # fails on this event: no shift
])
def test_priority_factor(expr: str | None, factor: int) -> None:
    config: dict[str, Any] = {"priority": {"run": expr}} if expr else {}
    assert priority.factor_s(config, EVENT) == factor


def test_only_a_negative_factor_delays_the_start() -> None:
    assert priority.delay_ms({"priority": {"run": "-5"}}, EVENT) == 5000
    assert priority.delay_ms({"priority": {"run": "5"}}, EVENT) == 0


GOOD = {"id": "app-f", "triggers": [{"event": "e", "expression": "event.data.x > 1"}],
        "concurrency": [{"limit": 2, "key": "event.data.user", "scope": "env"}],
        "throttle": {"limit": 1, "period": "1s", "burst": 1, "key": "event.data.t"},
        "rateLimit": {"limit": 1, "period": "1m", "key": "event.data.r"},
        "priority": {"run": "event.data.p"},
        "cancel": [{"event": "c", "if": "event.data.id == async.data.id"}]}


@pytest.mark.parametrize(("patch", "message"), [
    ({}, None),
    ({"concurrency": [{"limit": 2, "key": "event.data."}]}, "invalid concurrency[0].key 'event.data.'"),
    ({"throttle": {"limit": 1, "period": "1s", "key": "event.data.t +"}}, "invalid throttle.key"),
    ({"rateLimit": {"limit": 1, "period": "1m", "key": "(("}}, "invalid rateLimit.key"),
    ({"priority": {"run": "event.data.p ?"}}, "invalid priority.run"),
    ({"cancel": [{"event": "c", "if": "async.data.id =="}]}, "invalid cancel[0].if"),
    ({"triggers": [{"event": "e", "expression": "event.name = 'x'"}]}, "invalid triggers[0].expression"),
    ({"idempotency": "event.data.id )"}, "invalid idempotency"),
    ({"debounce": {"period": "1s", "key": "event.data.k ||"}}, "invalid debounce.key"),
    ({"concurrency": [{"limit": 1}, {"limit": 2}, {"limit": 3}]}, "at most 2"),
    ({"concurrency": [{"limit": 0}]}, "concurrency[0].limit must be a positive integer"),
    ({"concurrency": [{"limit": 1, "scope": "galaxy"}]}, "concurrency[0].scope 'galaxy'"),
    ({"throttle": {"limit": 0, "period": "1s"}}, "throttle.limit must be a positive integer"),
])
def test_check_function(patch: dict[str, Any], message: str | None) -> None:
    problem = validate.check_function({**GOOD, **patch})
    if message is None:
        assert problem is None
    else:
        assert problem is not None and message in problem


@pytest.mark.parametrize(("status", "started_at", "now", "expected"), [
    ("Queued", None, 10_000, 12_000),      # not started yet: look again one period later
    ("Running", 9_000, 10_000, 11_000),    # started after it was scheduled: the deadline moves
    ("Running", 7_000, 10_000, None),      # ran the whole period: cancel now
    ("Running", 8_000, 10_000, None),      # exactly at the deadline: cancel
])
def test_finish_deadline_counts_from_the_start(status: str, started_at: int | None, now: int,
                                               expected: int | None) -> None:
    from agentcmd.engine.flow.timeouts import finish_deadline

    assert finish_deadline(status, started_at, 2_000, now) == expected
