"""A registered function as the engine holds it: its ids, URL, config and parsed triggers.

Plain data with no behaviour, in a module of its own because both sides
read it: the registry builds ``Function`` values from an app's
registration, and flow control (``flow/``) decides on their config. With
the type here, neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Function:
    """One registered function, parsed from its FunctionConfig."""

    slug: str
    uuid: str
    app_id: str
    name: str
    url: str
    config: dict[str, Any]
    max_attempts: int
    event_triggers: tuple[tuple[str, str | None], ...] = ()   # (event name pattern, expression)
    crons: tuple[str, ...] = ()
