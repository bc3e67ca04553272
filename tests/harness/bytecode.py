"""Compiled bytecode for the suite's many ``python -m agentcmd`` children, kept outside the source tree.

The suite starts a great many Python children (engines, app servers,
supervisors, one-shot CLI commands). Where ``PYTHONDONTWRITEBYTECODE`` is set
(as on this project's CI machine) every one of them compiled ``agentcmd``'s
sources again: about half of an engine's start-up CPU. ``cache_bytecode``
lets them write and reuse bytecode, in a directory under pytest's cache
(``.pytest_cache``, not ``__pycache__`` next to the sources), so the
source tree stays as the variable meant it to stay. xdist's workers and all
children inherit the setting from the environment.
"""

from __future__ import annotations

import os

import pytest


def cache_bytecode(config: pytest.Config) -> None:
    """Point children's bytecode at ``.pytest_cache/d/pycache`` instead of not writing any."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return  # bytecode is written already, or somewhere its owner chose
    cache = getattr(config, "cache", None)
    if cache is None:  # -p no:cacheprovider: nowhere of ours to put it
        return
    os.environ["PYTHONPYCACHEPREFIX"] = str(cache.mkdir("pycache"))
    del os.environ["PYTHONDONTWRITEBYTECODE"]
