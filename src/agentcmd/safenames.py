"""Names from requests that become file paths: one plain path component each, and the path stays inside.

A run id or artifact name in a URL (``/runs/{run_id}/artifacts/{name}``)
is joined onto the data directory. ``..`` (also sent as ``%2E%2E``, which
the router decodes), an absolute name, a separator (``/``, ``\\``, or
``%2F`` decoded) or a NUL byte would climb out of it, so ``path_under``
refuses them, and checks the resolved path (symlinks followed) is still
under the base, so a link planted inside cannot lead out either.
"""

from __future__ import annotations

import re
from pathlib import Path

_PLAIN = re.compile(r"[A-Za-z0-9_.-][A-Za-z0-9_. -]*")
MAX_NAME = 255


def is_plain_name(value: str) -> bool:
    """One ordinary file name: letters, digits, ``._- `` and not ``.`` or ``..`` (nor any dots-only name)."""
    return (0 < len(value) <= MAX_NAME and _PLAIN.fullmatch(value) is not None and value.strip(".") != ""
            and value == value.strip())


def path_under(base: Path, *names: str) -> Path | None:
    """``base/names...`` when every name is plain and the resolved result stays under ``base``; else None."""
    if not all(is_plain_name(name) for name in names):
        return None
    root = base.resolve()
    target = root.joinpath(*names).resolve()
    if target == root or not target.is_relative_to(root):
        return None
    return target
