"""Which mode a command runs in, and why.

Priority: an explicit ``--production``/``--dev`` flag, then ``NODE_ENV``,
then the command's own default (``start`` is production, ``dev`` is dev).
The reason is returned so the CLI can print "production (from NODE_ENV)":
a user who got the wrong mode must see at once where it came from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Mode(enum.StrEnum):
    DEV = "dev"
    PRODUCTION = "production"


@dataclass(frozen=True)
class ModeResolution:
    mode: Mode
    reason: str
    warning: str | None = None

    def describe(self) -> str:
        return f"{self.mode.value} (from {self.reason})"


_NODE_ENV = {
    "production": Mode.PRODUCTION,
    "prod": Mode.PRODUCTION,
    "development": Mode.DEV,
    "dev": Mode.DEV,
}

_COMMAND_DEFAULT = {"start": Mode.PRODUCTION, "dev": Mode.DEV}


def resolve_mode(flag: Mode | str | None, node_env: str | None, command: str) -> ModeResolution:
    """Resolve the mode for ``command`` ("dev" or "start").

    An unknown ``NODE_ENV`` (``test``, ``staging``...) is not an error: it is
    ignored with a warning, and the command's default applies.
    """
    if flag is not None:
        mode = Mode(flag)
        return ModeResolution(mode, "--production" if mode is Mode.PRODUCTION else "--dev")
    default = _COMMAND_DEFAULT.get(command, Mode.DEV)
    warning = None
    if node_env:
        value = node_env.strip().lower()
        if value in _NODE_ENV:
            return ModeResolution(_NODE_ENV[value], f"NODE_ENV={node_env}")
        warning = (
            f"NODE_ENV={node_env!r} is not 'production' or 'development'; "
            f"ignoring it and using the default of 'agentcmd {command}'"
        )
    return ModeResolution(default, f"the default of 'agentcmd {command}'", warning)
