"""Named fault-injection points for crash tests; no-ops unless enabled.

``AGENTCMD_ENGINE_CRASH_AT=<point>[:<n>]`` makes the engine ``os._exit(137)``
(no cleanup, no commit, like ``kill -9``) the n-th time (default 1st) it
passes ``point``. Points, in the order one step goes through them:

* ``before_call``        leased, about to POST to the SDK
* ``after_call``         the SDK answered; nothing committed yet
* ``after_step_commit``  the memo + next item + ack are committed

One point raises instead of exiting, to stand for a bug in the engine:

* ``worker_turn``        the worker's loop, each time it looks for due work

The variable is read once at import; production never sets it.
"""

from __future__ import annotations

import os
import sys

POINTS = ("before_call", "after_call", "after_step_commit", "worker_turn")
RAISES = ("worker_turn",)
ENV = "AGENTCMD_ENGINE_CRASH_AT"


def _parse(raw: str | None) -> tuple[str, int] | None:
    if not raw:
        return None
    name, _, count = raw.partition(":")
    if name not in POINTS:
        raise ValueError(f"{ENV}={raw!r}: unknown point (one of {', '.join(POINTS)})")
    return name, int(count or "1")


_target = _parse(os.environ.get(ENV))
_hits: dict[str, int] = {}


def hit(point: str) -> None:
    """Crash here if this point is armed and reached its count."""
    if _target is None or _target[0] != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] >= _target[1]:
        if point in RAISES:
            raise RuntimeError(f"debug trigger {point} #{_hits[point]}: an injected engine bug")
        sys.stderr.write(f"debug trigger {point} #{_hits[point]}: exiting now\n")
        sys.stderr.flush()
        os._exit(137)
