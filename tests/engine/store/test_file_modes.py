"""A production engine keeps its database private: directory 0700, database and WAL files 0600.

``agentcmd engine start --sqlite-dir DIR`` used to create DIR 0755 and
engine.db 0644 (every local account could read every event and step
output). The engine runs here with the usual umask 022.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)      # inherited by the engine subprocess
    yield
    os.umask(old)


def _modes(db_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in [db_dir, *db_dir.iterdir()]}


def test_the_database_directory_and_files_are_private(engine_factory: Callable[..., Any], tmp_path: Path) -> None:
    db_dir = tmp_path / "new" / "engine-db"
    engine = engine_factory("production", sqlite_dir=db_dir)
    r = httpx.post(f"{engine.url}/e/{engine.key}", json={"name": "t/x", "data": {}}, timeout=5)
    assert r.status_code == 200, r.text
    modes = _modes(db_dir)
    assert modes == {"engine-db": 0o700, "engine.db": 0o600, "engine.db-wal": 0o600, "engine.db-shm": 0o600,
                     "engine.db.lock": 0o600}, modes
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700      # a parent it created too


def test_files_an_older_version_left_readable_are_tightened_at_start(engine_factory: Callable[..., Any],
                                                                     tmp_path: Path) -> None:
    db_dir = tmp_path / "engine-db"
    engine = engine_factory("production", sqlite_dir=db_dir)
    assert engine.stop() == 0
    os.chmod(db_dir, 0o755)
    for p in db_dir.iterdir():
        os.chmod(p, 0o644)
    engine.start()
    modes = _modes(db_dir)
    assert modes["engine-db"] == 0o700 and all(m == 0o600 for name, m in modes.items() if name != "engine-db"), modes
