"""How many pytest-xdist workers ``-n auto`` (set in pyproject.toml) starts: see tests/README.md.

Most of a test's time is spent waiting: on a child engine or server to come
up, on HTTP, on a run to reach a state. So the whole suite runs on more
workers than the machine has cores: at least ``MIN_WORKERS``. Measured on 2
shared, busy cores: 1 process 2563 s, 4 workers 836 s, 3 workers 471 s (less
busy then); 4 workers starved the engines enough that timing-bound tests in
tests/engine/flow failed (6 of them), 3 workers one to three a run; 2 workers on
2 quiet cores: 1,914 tests in 683 s, none failed. Workers are given whole modules (``--dist loadscope``), so
a module-scoped engine or browser is started once, not once per worker.

A run of one test file stays in this process (starting workers costs more
than it saves); a run of a few files gets one worker per file.
``PYTEST_XDIST_AUTO_NUM_WORKERS=N`` (xdist's own variable) or ``-n N``
overrides the count; ``-n 0`` runs everything in this one process.
"""

from __future__ import annotations

import os
from pathlib import Path

MIN_WORKERS = 2


def auto_workers(args: list[str]) -> int | None:
    """The worker count for ``-n auto`` and these command-line paths; None leaves it to xdist."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist reads its own variable
    default = max(MIN_WORKERS, os.cpu_count() or 1)
    files = {arg.split("::", 1)[0] for arg in args}
    if not files or not all(Path(f).suffix == ".py" for f in files):
        return default  # the suite, or whole folders
    return 0 if len(files) == 1 else min(len(files), default)
