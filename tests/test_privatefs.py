"""Private files and directories: 0700 / 0600 whatever the umask, older ones tightened."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcmd.privatefs import ensure_private_dir, ensure_private_file, private_umask, tighten, write_private_file


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)   # what most systems give a user: without the helpers, 0755 / 0644
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_every_directory_created_is_0700_and_existing_parents_are_left_alone(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    target = ensure_private_dir(tmp_path / "a" / "b" / "c")
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", target)] == [0o700] * 3
    assert mode(tmp_path) == 0o755


def test_an_existing_directory_loses_group_and_other_access(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    ensure_private_dir(old)
    assert mode(old) == 0o700


def test_files_are_0600_and_an_existing_read_only_file_stays_read_only(tmp_path: Path) -> None:
    write_private_file(tmp_path / "run" / "artifact.txt", b"data")
    assert mode(tmp_path / "run") == 0o700 and mode(tmp_path / "run" / "artifact.txt") == 0o600
    wide = tmp_path / "wide"
    wide.write_text("x")
    os.chmod(wide, 0o644)
    write_private_file(wide, b"y")
    assert mode(wide) == 0o600 and wide.read_bytes() == b"y"
    ro = tmp_path / "ro"
    ro.write_text("x")
    os.chmod(ro, 0o444)
    ensure_private_file(ro)
    assert mode(ro) == 0o400        # tightened, never made writable
    tighten(tmp_path / "missing")   # nothing to do, no error


def test_private_umask_covers_files_a_library_creates(tmp_path: Path) -> None:
    with private_umask():
        conn = sqlite3.connect(tmp_path / "x.db")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (x)")
        assert {p.name: mode(p) for p in tmp_path.iterdir()} == {"x.db": 0o600, "x.db-wal": 0o600,
                                                                  "x.db-shm": 0o600}
        conn.close()
    assert os.umask(0o022) == 0o022     # restored
