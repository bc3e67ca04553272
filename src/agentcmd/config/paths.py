"""Where agentcmd keeps its files.

``$AGENTCMD_HOME`` (default ``~/.agentcmd``) holds ``config.json`` (what
``agentcmd install`` wrote, mode 0600) and ``data/`` (the engine's SQLite
directory and run workspaces). The home directory is created 0700 because
the config file holds keys.
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_FILE_NAME = "config.json"


def home_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    raw = env.get("AGENTCMD_HOME")
    return Path(raw).expanduser() if raw else Path.home() / ".agentcmd"


def config_path(environ: dict[str, str] | None = None) -> Path:
    return home_dir(environ) / CONFIG_FILE_NAME


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700 (``agentcmd.privatefs``)."""
    from agentcmd.privatefs import ensure_private_dir as private_dir

    return private_dir(path)
