"""The config file: read, validate, write (atomically, mode 0600).

Precedence is CLI flags > environment > this file > defaults; the file is
the lowest layer that a user edits, written by ``agentcmd install`` and
``agentcmd config set``. A broken file is reported with its path and the
offending field, never silently ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any

from agentcmd.config.paths import ensure_private_dir
from agentcmd.errors import ConfigError


class LoosePermissionsWarning(UserWarning):
    """The config file holds keys but others can read it."""


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's JSON object, or ``{}`` when it does not exist."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}",
            "check its permissions, or remove it and run 'agentcmd install'",
        ) from exc
    try:
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(
                f"config file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
                f"it holds keys: run 'chmod 600 {path}'",
                LoosePermissionsWarning,
                stacklevel=2,
            )
    except OSError:
        pass
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "fix the file, or remove it and run 'agentcmd install'",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a JSON object, not {type(data).__name__}",
            "fix the file, or remove it and run 'agentcmd install'",
        )
    return data


def write_config_file(path: Path, data: dict[str, Any]) -> None:
    """Write atomically with mode 0600 in a 0700 directory."""
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
