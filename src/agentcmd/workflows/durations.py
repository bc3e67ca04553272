"""Durations as users write them: ``"5s"``, ``"30m"``, ``"1h30m"``, ``"500ms"``, seconds as numbers.

One parser for sleeps, timeouts and ``define_workflow(timeout=)``, so every
place accepts the same spellings and rejects the same mistakes.
"""

from __future__ import annotations

import datetime
import re

from agentcmd.errors import InputError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: str | float | datetime.timedelta, what: str = "duration") -> datetime.timedelta:
    """Return ``value`` as a timedelta; numbers are seconds.

    Raises ``InputError`` naming ``what`` and the accepted spellings.
    """
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise InputError(f"{what}: {value!r} is not a duration", 'use e.g. "5s", "30m", "1h30m" or seconds')
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        pos, seconds = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text):
            raise InputError(f"{what}: {value!r} is not a duration",
                             'use a number and a unit (ms, s, m, h, d, w), e.g. "5s", "30m", "1h30m"')
    else:
        raise InputError(f"{what}: {value!r} is not a duration", 'use e.g. "5s", "30m" or seconds')
    if seconds < 0:
        raise InputError(f"{what}: {value!r} is negative", "use a positive duration")
    return datetime.timedelta(seconds=seconds)
