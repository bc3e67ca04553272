"""The ``workspaces`` setting: the app server's automatic cleanup of finished runs' workspaces.

Off by default (``prune_after`` unset): worktrees, run branches and artifacts
stay until ``agentcmd workspaces prune``. With ``prune_after`` set, the app
server prunes every ``check_every`` with the rules of that command without
``--force`` (``server/workspacepolicy.py``; docs/running.md "Workspaces cleanup").

Durations are parsed here rather than by ``workflows/durations.py`` so that
loading settings does not import the workflow stack (and the SDK) with it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
OFF = ("", "off", "never", "none")


def duration_seconds(value: Any, what: str) -> float:
    """``"7d"``, ``"12h"``, ``"1h30m"`` or a number of seconds as seconds; ValueError saying what to use."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a duration; use e.g. 7d, 12h or 30m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if text.replace(".", "", 1).isdigit():
            seconds = float(text)
        elif _DURATION.match(text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ValueError(f"{what}: {value!r} is not a duration; use a number and a unit (s, m, h, d, w), "
                             "e.g. 7d, 12h or 30m, or 'off'")
    if seconds < 0:
        raise ValueError(f"{what}: {value!r} is negative")
    return seconds


class WorkspacesSettings(BaseModel):
    """``workspaces.prune_after`` (off by default) and ``workspaces.check_every`` (1h)."""

    model_config = {"extra": "forbid"}

    prune_after: str | None = Field(default=None, description="remove items of runs finished longer ago than this")
    check_every: str = Field(default="1h", description="how often the app server looks")

    @field_validator("prune_after", mode="before")
    @classmethod
    def _check_prune_after(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and v.strip().lower() in OFF):
            return None
        duration_seconds(v, "workspaces.prune_after")
        return str(v).strip()

    @field_validator("check_every", mode="before")
    @classmethod
    def _check_every(cls, v: Any) -> str:
        if duration_seconds(v, "workspaces.check_every") < 60:
            raise ValueError(f"workspaces.check_every: {v!r} is under a minute; use e.g. 1h or 10m")
        return str(v).strip()

    @property
    def prune_after_seconds(self) -> float | None:
        return None if self.prune_after is None else duration_seconds(self.prune_after, "workspaces.prune_after")

    @property
    def check_every_seconds(self) -> float:
        return duration_seconds(self.check_every, "workspaces.check_every")
