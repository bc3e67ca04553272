"""The run retention setting as people write it: ``30d``, ``12h``, ``90m``, ``3600`` (seconds), ``forever``.

A module of its own, importing nothing of the engine, because the settings
(``config/settings.py``, loaded by every command) check the value with it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from agentcmd.errors import ConfigError

DEFAULT_RETENTION_S = 30 * 86400.0
SOURCES = "--retention, AGENTCMD_ENGINE_RETENTION or engine_retention in config.json"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_FOREVER = {"0", "forever", "never", "none", "off", "keep"}


def parse_retention(value: Any, source: str = SOURCES) -> float | None:
    """``30d``, ``12h``, ``90m``, ``3600`` (seconds), ``2w`` -> seconds; ``0``/``forever`` -> None (keep all).

    Anything else is a ``ConfigError`` naming ``source`` and the forms to use.
    """
    if value is None:
        return DEFAULT_RETENTION_S
    if isinstance(value, bool):
        raise _bad(value, source)
    if isinstance(value, int | float):
        if value == 0:
            return None
        if not math.isfinite(value) or value < 0:
            raise _bad(value, source)
        return float(value)
    text = str(value).strip().lower()
    if not text:                     # an empty variable (AGENTCMD_ENGINE_RETENTION= in a .env file): the default
        return DEFAULT_RETENTION_S
    if text in _FOREVER:
        return None
    m = _DURATION.match(text)
    if m is None:
        raise _bad(value, source)
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    return None if seconds == 0 else seconds


def parse_age(value: str, source: str) -> float:
    """``--older-than``: a duration like ``30d`` (above 0; ``forever`` makes no sense here)."""
    seconds = parse_retention(value, source)
    if seconds is None:
        raise ConfigError(f"{source} must be an age above 0 such as 30d, 12h or 90m, got {value!r}",
                          "e.g. --older-than 30d removes finished runs that ended more than 30 days ago")
    return seconds


def _bad(value: Any, source: str) -> ConfigError:
    return ConfigError(f"the run retention ({source}) must be a duration such as 30d, 12h, 90m or 3600 "
                       f"(seconds), or 0/forever to keep every run, got {value!r}",
                       "e.g. AGENTCMD_ENGINE_RETENTION=30d (the default), or forever to never prune")


def format_retention(seconds: float | None) -> str:
    """The setting as people write it: ``30d``, ``12h``, ``forever``."""
    if seconds is None:
        return "forever"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
