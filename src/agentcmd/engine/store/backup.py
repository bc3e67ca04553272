"""Backups and restores of the engine's SQLite database (``agentcmd backup`` / ``agentcmd restore``).

Backup copies the live file with SQLite's online backup API, from a
connection of its own that holds one read transaction for the whole copy:
in WAL mode a reader never blocks the engine's writer, and the held snapshot
means the copy is consistent (one moment of the database) even though it is
made in steps of ``STEP_PAGES`` pages and the engine keeps committing
meanwhile (a backup step that sees the source change under it would start
over; a held snapshot never changes). The only cost to the engine is that
its checkpoints cannot recycle the WAL past that snapshot until the copy
ends, so the ``-wal`` file may grow for the duration.

The copy is written to a hidden temporary file beside the target, switched
to a self-contained rollback-journal file (no ``-wal`` needed to read it),
checked (``PRAGMA integrity_check``, the schema version, the run count),
fsynced, made 0600 and only then renamed to its name: a target either is
a complete, checked backup or does not exist.

Restore refuses while an engine uses the database: it takes the same
advisory lock (``engine.db.lock``) that a starting engine takes, and holds
it until the restored file is in place, so no engine can start half way
through either. The file is copied beside the database and checked first
(integrity, an agentcmd engine database, a schema version this agentcmd
knows; an older one is migrated when the engine next opens it); only then
is the current database (with its ``-wal`` and ``-shm``) renamed aside to
``engine.db.before-restore-<UTC time>`` and the copy renamed into place.
Nothing is deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from agentcmd.engine.store.migrations import latest_version
from agentcmd.errors import (
    DatabaseCorruptError,
    DatabaseLockedError,
    DatabaseVersionError,
    StoreError,
    Variant,
)
from agentcmd.privatefs import FILE_MODE, ensure_private_dir

STEP_PAGES = 256
"""Pages copied per backup step (1 MiB at SQLite's default 4 KiB page); the engine's writes go on between steps."""
BUSY_TIMEOUT_MS = 5000
SQLITE_HEADER = b"SQLite format 3\x00"
_IN_FLIGHT = ("Queued", "Running")
Progress = Callable[[int, int], None]
"""Called after each backup step with (pages copied, pages in all)."""


class BackupError(StoreError):
    """A backup or restore was refused: the file is missing, not an engine database, or cannot be written."""

    code = "backup_failed"
    exit_code = 2
    http_status = 400
    fix_hint = "follow the 'fix:' line; nothing was changed (docs/running.md, 'Backup and restore')"
    variants: ClassVar[dict[str, Variant]] = {
        "backup_not_found": ("the file to back up or restore does not exist (or there is no engine database "
                             "yet: dev mode keeps none)", "check the path, or --sqlite-dir"),
        "backup_not_sqlite": ("the file to restore is not a SQLite database", "pass a file 'agentcmd backup' wrote"),
        "backup_not_engine": ("the file is a SQLite database but not an agentcmd engine database (no "
                              "schema_version or runs table)", "pass a file 'agentcmd backup' wrote"),
        "backup_exists": ("the backup target already exists", "choose another file name, or pass --force"),
        "backup_unwritable": ("the backup target (or the database directory, for a restore) cannot be written",
                              "choose a writable directory, or fix its permissions or free space"),
        "backup_same_file": ("the file to restore is the engine database itself", "restore another file"),
    }


@dataclass(frozen=True)
class DatabaseFacts:
    """What the checks found in a database file."""

    schema_version: int
    runs: int
    in_flight: int


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    facts: DatabaseFacts
    engine_running: bool
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    source: Path
    facts: DatabaseFacts
    kept_aside: list[Path]
    """The replaced database's files, renamed (empty if there was none)."""
    migrates_to: int | None
    """The schema version the next engine start migrates to, when the file's is older."""


def default_backup_path(backups_dir: Path, now: datetime | None = None) -> Path:
    """``engine-<UTC time>.db`` in ``backups_dir``; ``-2``, ``-3``... when a backup of that second exists."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    path, n = backups_dir / f"engine-{stamp}.db", 1
    while path.exists():
        n += 1
        path = backups_dir / f"engine-{stamp}-{n}.db"
    return path


# -- locking ---------------------------------------------------------------------

def lock_path(db_path: Path) -> Path:
    """The advisory lock a running engine holds (engine/store/sqlite.py ``Database._lock_file``)."""
    return db_path.with_name(db_path.name + ".lock")


def engine_running(db_path: Path) -> bool:
    """True while an engine holds the database's lock (probed without taking it for long)."""
    try:
        with _engine_lock(db_path, create=False):
            return False
    except DatabaseLockedError:
        return True
    except OSError:          # no lock file (no engine ever ran here), or one we may not open: none of ours runs
        return False


@contextlib.contextmanager
def _engine_lock(db_path: Path, create: bool = True) -> Iterator[None]:
    """Hold the engine's lock: no engine can start on ``db_path`` meanwhile."""
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    fd = os.open(lock_path(db_path), flags, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DatabaseLockedError(
                f"the engine database {db_path} is in use by a running engine",
                "stop it first ('agentcmd start' with Ctrl-C, or stop its service), then run the restore again; "
                "nothing was changed") from None
        yield
    finally:
        os.close(fd)


# -- checks ----------------------------------------------------------------------

def check_database(conn: sqlite3.Connection, where: str, fix: str = "") -> DatabaseFacts:
    """Integrity, an engine schema this agentcmd knows, and the run counts; raise naming ``where``."""
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise _corrupt(where, str(exc), fix) from None
    problems = [str(r[0]) for r in rows]
    if problems != ["ok"]:
        raise _corrupt(where, "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5
                                                           else ""), fix)
    tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"schema_version", "runs"} <= tables:
        raise BackupError(f"{where} is a SQLite database but not an agentcmd engine database "
                          "(it has no schema_version or runs table)",
                          "pass a file written by 'agentcmd backup' (or an engine.db)", code="backup_not_engine")
    version = int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])
    latest = latest_version()
    if version > latest:
        raise DatabaseVersionError(
            f"{where} has engine schema version {version}, newer than this agentcmd knows ({latest}): it was "
            "written by a newer agentcmd",
            "upgrade agentcmd ('pip install -U agentcmd') and run the restore again; nothing was changed")
    runs = int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    in_flight = int(conn.execute("SELECT COUNT(*) FROM runs WHERE status IN (?, ?)", _IN_FLIGHT).fetchone()[0])
    return DatabaseFacts(version, runs, in_flight)


_RESTORE_FIX = "use another backup; nothing was changed"
_BACKUP_FIX = ("the engine database itself is damaged: stop the engine, keep the file for inspection, and "
               "restore an earlier backup ('agentcmd restore FILE'); no backup was written")


def _corrupt(where: str, detail: str, fix: str = "") -> DatabaseCorruptError:
    return DatabaseCorruptError(f"{where} is corrupt: the integrity check failed ({detail})", fix or _RESTORE_FIX)


def _check_sqlite_file(path: Path, role: str) -> None:
    """Exists, is a regular readable file, and starts with SQLite's header."""
    if not path.exists():
        raise BackupError(f"{role} {path} does not exist", "check the path", code="backup_not_found")
    if not path.is_file():
        raise BackupError(f"{role} {path} is not a regular file", "pass the path of a database file",
                          code="backup_not_sqlite")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise BackupError(f"{role} {path} cannot be read ({exc.strerror})",
                          "check its permissions", code="backup_not_found") from None
    if head != SQLITE_HEADER:
        what = "is empty" if not head else "is not a SQLite database"
        raise BackupError(f"{role} {path} {what}", "pass a file written by 'agentcmd backup'",
                          code="backup_not_sqlite")


# -- copying ---------------------------------------------------------------------

def _connect_source(path: Path, *, live: bool) -> sqlite3.Connection:
    """A connection that cannot create ``path``; ``live``: it may have a WAL (read it, and any engine's writes)."""
    uri = path.resolve().as_uri() + ("?mode=rw" if live else "?mode=ro")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _temp_beside(target: Path, tag: str) -> Path:
    """An empty 0600 file in ``target``'s directory (same filesystem: the final rename is atomic)."""
    tmp = target.with_name(f".{target.name}.{tag}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    return tmp


def _copy(source: sqlite3.Connection, tmp: Path, where: str, progress: Progress | None = None,
          fix: str = "") -> DatabaseFacts:
    """Copy ``source`` (one snapshot, in steps) into ``tmp``, make it self-contained, check it."""
    dest = sqlite3.connect(str(tmp), isolation_level=None)
    try:
        source.execute("BEGIN")
        source.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()    # the read snapshot starts here
        try:
            source.backup(dest, pages=STEP_PAGES,
                          progress=None if progress is None else lambda _s, left, total: progress(total - left, total))
        finally:
            source.execute("COMMIT")
        dest.execute("PRAGMA journal_mode = DELETE")     # one file: readable without a -wal beside it
        facts = check_database(dest, where, fix)
    finally:
        dest.close()
    _fsync(tmp)
    return facts


def _copy_live(source: Path, tmp: Path) -> DatabaseFacts:
    """A database with a ``-wal`` beside it: read through SQLite, so committed writes still in the WAL come too."""
    conn = _connect_source(source, live=True)
    try:
        return _copy(conn, tmp, str(source))
    finally:
        conn.close()


def _copy_file(source: Path, tmp: Path) -> DatabaseFacts:
    """A self-contained file: copy its bytes, then check the copy (SQLite never opens, or writes beside, ``source``)."""
    shutil.copyfile(source, tmp)
    conn = sqlite3.connect(str(tmp), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        facts = check_database(conn, str(source))
    finally:
        conn.close()
    _fsync(tmp)
    return facts


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)


def _remove(*paths: Path) -> None:
    for p in paths:
        for extra in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p.with_name(p.name + extra))


def _unwritable(target: Path, exc: OSError, what: str) -> BackupError:
    return BackupError(f"cannot write {what} {target}: {exc.strerror or exc}",
                       "choose a writable directory (or fix its permissions, or free space); nothing was changed",
                       code="backup_unwritable")


def backup(db_path: Path, target: Path, *, force: bool = False, progress: Progress | None = None) -> BackupResult:
    """Copy the engine database ``db_path`` to ``target`` (running engine or not); see the module docstring."""
    started = time.monotonic()
    if not db_path.exists():
        raise BackupError(f"there is no engine database at {db_path}",
                          "check --sqlite-dir (or AGENTCMD_SQLITE_DIR / AGENTCMD_DATA_DIR); dev mode keeps its "
                          "database in memory and has nothing to back up", code="backup_not_found")
    _check_sqlite_file(db_path, "the engine database")
    if target.exists() and not force:
        raise BackupError(f"{target} already exists", "choose another file name, or pass --force to replace it",
                          code="backup_exists")
    if target.exists() and target.resolve() == db_path.resolve():
        raise BackupError(f"{target} is the engine database itself", "choose another file name",
                          code="backup_same_file")
    try:
        ensure_private_dir(target.parent)
        tmp = _temp_beside(target, "partial")
    except OSError as exc:
        raise _unwritable(target, exc, "the backup") from None
    running = engine_running(db_path)
    try:
        try:
            source = _connect_source(db_path, live=True)
        except sqlite3.Error as exc:
            raise _corrupt(str(db_path), str(exc), _BACKUP_FIX) from None
        try:
            facts = _copy(source, tmp, f"the engine database {db_path}", progress, _BACKUP_FIX)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                raise DatabaseLockedError(f"the engine database {db_path} stayed locked ({exc})",
                                          "run the backup again; nothing was written") from None
            raise _unwritable(target, OSError(str(exc)), "the backup") from None
        except sqlite3.DatabaseError as exc:
            raise _corrupt(str(db_path), str(exc), _BACKUP_FIX) from None
        finally:
            source.close()
        os.chmod(tmp, FILE_MODE)
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise _unwritable(target, exc, "the backup") from None
        _fsync_dir(target.parent)
    except BaseException:
        _remove(tmp)
        raise
    return BackupResult(target, target.stat().st_size, facts, running, time.monotonic() - started)


def restore(source: Path, db_path: Path, now: datetime | None = None) -> RestoreResult:
    """Replace the engine database ``db_path`` by a checked copy of ``source``; see the module docstring."""
    _check_sqlite_file(source, "the backup")
    if db_path.exists() and source.resolve() == db_path.resolve():
        raise BackupError(f"{source} is the engine database itself", "restore a backup file",
                          code="backup_same_file")
    try:
        ensure_private_dir(db_path.parent)
    except OSError as exc:
        raise _unwritable(db_path.parent, exc, "the database directory") from None
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(_engine_lock(db_path))
        except OSError as exc:
            raise _unwritable(db_path.parent, exc, "the database directory") from None
        return _restore_locked(source, db_path, now)
    raise AssertionError("unreachable")


def _restore_locked(source: Path, db_path: Path, now: datetime | None) -> RestoreResult:
    live = source.with_name(source.name + "-wal").exists()    # an engine.db (or a kept-aside one) with its WAL
    try:
        tmp = _temp_beside(db_path, "restoring")
    except OSError as exc:
        raise _unwritable(db_path.parent, exc, "the database directory") from None
    try:
        try:
            facts = _copy_live(source, tmp) if live else _copy_file(source, tmp)
        except sqlite3.OperationalError as exc:
            if "disk" in str(exc).lower() or "readonly" in str(exc).lower():
                raise _unwritable(db_path.parent, OSError(str(exc)), "the database directory") from None
            raise _corrupt(str(source), str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise _corrupt(str(source), str(exc)) from None
        except OSError as exc:
            raise _unwritable(db_path.parent, exc, "the database directory") from None
        aside = _move_aside(db_path, now)
        try:
            os.replace(tmp, db_path)
        except OSError as exc:
            _move_back(aside, db_path)
            raise _unwritable(db_path, exc, "the database") from None
        _fsync_dir(db_path.parent)
    except BaseException:
        _remove(tmp)
        raise
    latest = latest_version()
    return RestoreResult(db_path, source, facts, [new for _old, new in aside],
                         latest if facts.schema_version < latest else None)


def _move_aside(db_path: Path, now: datetime | None) -> list[tuple[Path, Path]]:
    """Rename the database and its -wal/-shm to ``<name>.before-restore-<time>[-wal|-shm]``.

    SQLite finds a database's WAL as ``<file>-wal``, so the kept-aside file
    still opens with every committed write, even after a crash.
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
    n = 1
    while base.exists():
        n += 1
        base = db_path.with_name(f"{db_path.name}.before-restore-{stamp}-{n}")
    moved: list[tuple[Path, Path]] = []
    for suffix in ("", "-wal", "-shm"):
        old = db_path.with_name(db_path.name + suffix)
        if not old.exists():
            continue
        new = base.with_name(base.name + suffix)
        try:
            os.rename(old, new)
        except OSError as exc:
            _move_back(moved, db_path)
            raise _unwritable(db_path.parent, exc, "the database directory") from None
        moved.append((old, new))
    return moved


def _move_back(moved: list[tuple[Path, Path]], db_path: Path) -> None:
    for old, new in reversed(moved):
        with contextlib.suppress(OSError):
            os.rename(new, old)
