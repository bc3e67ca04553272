"""Files and directories only their owner can read: 0700 directories, 0600 files.

Everything agentcmd keeps on disk is private to the user who runs it: the
config file holds keys, the engine database holds every event's data and
every step's output, artifacts and run records hold what workflows produced.
With the usual umask (022) a plain ``mkdir`` or ``open`` makes them 0755 /
0644, readable by every local account; these helpers create them 0700 /
0600 whatever the umask, and tighten what an older version left wider.

No imports beyond the standard library: the engine's store uses this on its
startup path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def tighten(path: Path) -> None:
    """Take group and other permissions off ``path`` if it exists and we own it.

    Only removes bits: a read-only file stays read-only, and a directory we
    do not own (shared, or root's) is left alone.
    """
    with contextlib.suppress(OSError):
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(path, st.st_mode & 0o700)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents 0700; take group/other access off ``path`` if it exists.

    Parents that already exist keep their mode (``/tmp``, a home directory).
    """
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIR_MODE)
        os.chmod(directory, DIR_MODE)    # mkdir's mode is masked by the umask; be exact
    tighten(path)
    return path


def ensure_private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if missing (its directory must exist); tighten it if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
    else:
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600), creating its directories 0700."""
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)        # an existing file keeps its mode through O_CREAT
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            fh.write(data)
    finally:
        if fd >= 0:
            os.close(fd)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside (by us or by a library, e.g. SQLite's ``-wal``/``-shm``) are at most 0600/0700.

    The umask is per process: use it only where no other thread creates files
    that should stay shareable (the engine's startup), never around user commands.
    """
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)
