"""Write a generated docs page, or with ``--check`` say whether the committed one is current.

The generators (``gen_cli_docs.py``, ``gen_errors_docs.py``) only render
their page; this is the one place that decides between writing and checking,
so the docs tests and a developer's regeneration behave the same for both.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(target: Path, text: str, script: str) -> int:
    """Exit status: 0 written or current; 1 stale under ``--check`` (saying how to regenerate)."""
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run .venv/bin/python scripts/{script}", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target}")
    return 0
