"""Terminal output: errors as "error: what" + "fix: how", never a traceback.

Rich is imported lazily so that ``--help`` and ``config`` stay fast.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from agentcmd.errors import AgentcmdError


def error(err: AgentcmdError) -> None:
    """Render an ``AgentcmdError`` on stderr: two short lines."""
    lines = [f"error: {err.what}"]
    if err.fix:
        lines.append(f"fix: {err.fix}")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def info(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def not_yet_available(feature: str) -> None:
    """For commands whose implementation lands later: a clear message, exit 2."""
    raise AgentcmdError(
        f"'{feature}' is not yet available in this version of agentcmd",
        "see 'agentcmd --help' for what is",
        code="not_implemented",
        exit_code=2,
    )
