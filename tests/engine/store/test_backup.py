"""``agentcmd backup`` / ``agentcmd restore`` on real SQLite files (engine/store/backup.py).

The copy must be one consistent moment while a writer keeps committing;
every bad input (missing, not SQLite, corrupt, not an engine database, a
newer schema, a running engine, an unwritable target) is refused with its
own error and leaves every file as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.harness.processes import run_cli

from agentcmd.engine.store import DB_FILE_NAME, backup
from agentcmd.engine.store.migrations import latest_version, migration_files
from agentcmd.engine.store.sqlite import Database
from agentcmd.errors import DatabaseCorruptError, DatabaseLockedError, DatabaseVersionError


def _engine_db(directory: Path, runs: int = 3) -> Database:
    """An open engine database (it holds the engine's lock, like a running engine) with ``runs`` runs."""
    db = Database(directory / DB_FILE_NAME)
    db.open()

    def fill(conn: sqlite3.Connection) -> None:
        for i in range(runs):
            conn.execute("INSERT INTO runs (run_id, function_slug, app_id, event_id, first_event, events, status, "
                         "max_attempts, created_at) VALUES (?, 'app-fn', 'app', 'e', '{}', '[]', ?, 1, 0)",
                         (f"run-{i}", "Running" if i == 0 else "Completed"))

    db.write_sync(fill)
    return db


def _digest(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` and its content hash: what 'nothing changed' means."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_backup_of_a_running_database_is_a_checked_private_single_file(tmp_path: Path) -> None:
    db = _engine_db(tmp_path / "engine", runs=3)
    try:
        result = backup.backup(db.path, tmp_path / "out" / "copy.db")      # type: ignore[arg-type]
    finally:
        db.close()
    assert result.engine_running
    assert result.facts == backup.DatabaseFacts(latest_version(), 3, 1)
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert result.size == result.path.stat().st_size > 0
    assert not result.path.with_name("copy.db-wal").exists()
    conn = sqlite3.connect(result.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3
    assert [p.name for p in result.path.parent.iterdir()] == ["copy.db"]     # no temporary file left


def test_backup_while_a_writer_commits_is_one_consistent_moment(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Copied in many small steps while another connection commits: the copy holds rows 1..k, no gap."""
    db = _engine_db(tmp_path / "engine", runs=0)
    db.write_sync(lambda c: c.executemany("INSERT INTO history (run_id, at, type, detail) VALUES ('r', 0, 'x', ?)",
                                          [("y" * 500,) for _ in range(5000)]))
    monkeypatch.setattr(backup, "STEP_PAGES", 4)
    steps: list[int] = []
    stop = threading.Event()
    written = threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(str(db.path), isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        while not stop.is_set():
            conn.execute("INSERT INTO history (run_id, at, type, detail) VALUES ('w', 0, 'x', 'z')")
            written.set()
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        written.wait(10)
        result = backup.backup(db.path, tmp_path / "copy.db",      # type: ignore[arg-type]
                               progress=lambda done, _total: steps.append(done))
    finally:
        stop.set()
        thread.join(10)
        db.close()
    assert len(steps) > 100                 # in steps, not one long copy
    conn = sqlite3.connect(result.path)
    count, top = conn.execute("SELECT COUNT(*), MAX(id) FROM history").fetchone()
    assert count == top and count >= 5000       # ids 1..k: a prefix of the commits, never a torn page
    after = sqlite3.connect(str(db.path)).execute("SELECT COUNT(*) FROM history").fetchone()[0]
    assert after > 5000                     # the writer was not stalled out


def test_backup_refuses_an_existing_target_unless_forced_and_an_unwritable_one(tmp_path: Path) -> None:
    db = _engine_db(tmp_path / "engine")
    db.close()
    target = tmp_path / "copy.db"
    target.write_text("precious")
    with pytest.raises(backup.BackupError) as err:
        backup.backup(db.path, target)      # type: ignore[arg-type]
    assert err.value.code == "backup_exists" and target.read_text() == "precious"
    assert backup.backup(db.path, target, force=True).facts.runs == 3      # type: ignore[arg-type]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(backup.BackupError) as err:
        backup.backup(db.path, blocker / "copy.db")      # type: ignore[arg-type]
    assert err.value.code == "backup_unwritable" and "a-file" in err.value.what
    with pytest.raises(backup.BackupError) as err:
        backup.backup(tmp_path / "nowhere" / DB_FILE_NAME, tmp_path / "x.db")
    assert err.value.code == "backup_not_found" and "dev mode" in (err.value.fix or "")


def _crash_after_commit(path: Path, sql: str) -> None:
    """Commit ``sql`` in a process that then dies without closing: the row is only in the ``-wal``."""
    code = ("import os, sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('PRAGMA journal_mode = WAL')\n"
            "c.execute(sys.argv[2])\n"
            "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(path), sql], check=True, timeout=30)


def test_restore_replaces_the_database_and_keeps_the_old_one_aside_with_its_wal(tmp_path: Path) -> None:
    source = _engine_db(tmp_path / "src", runs=2)
    source.close()
    copy = backup.backup(source.path, tmp_path / "b.db").path      # type: ignore[arg-type]
    live = _engine_db(tmp_path / "engine", runs=0)
    live.close()
    _crash_after_commit(live.path, "INSERT INTO runs (run_id, function_slug, app_id, event_id, "  # type: ignore[arg-type]
                        "first_event, events, status, max_attempts, created_at) "
                        "VALUES ('newer', 's', 'a', 'e', '{}', '[]', 'Completed', 1, 0)")
    db_path = tmp_path / "engine" / DB_FILE_NAME
    assert db_path.with_name(DB_FILE_NAME + "-wal").stat().st_size > 0
    result = backup.restore(copy, db_path)
    assert result.facts.runs == 2 and result.migrates_to is None
    aside = result.kept_aside[0]
    assert aside.name.startswith(DB_FILE_NAME + ".before-restore-")
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    kept = sqlite3.connect(aside).execute("SELECT run_id FROM runs").fetchall()
    assert kept == [("newer",)]           # the replaced database, its WAL included, is intact
    reopened = Database(db_path)
    reopened.open()
    assert reopened.read_sync(lambda c: c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]) == 2
    reopened.close()


def test_restore_refuses_while_an_engine_holds_the_database(tmp_path: Path) -> None:
    source = _engine_db(tmp_path / "src")
    source.close()
    live = _engine_db(tmp_path / "engine", runs=1)
    db_path = tmp_path / "engine" / DB_FILE_NAME
    files = sorted(os.listdir(db_path.parent))
    try:
        assert backup.engine_running(db_path)
        with pytest.raises(DatabaseLockedError, match="in use by a running engine"):
            backup.restore(source.path, db_path)      # type: ignore[arg-type]
        assert sorted(os.listdir(db_path.parent)) == files       # no copy, nothing renamed
        assert live.read_sync(lambda c: c.execute("SELECT run_id FROM runs").fetchall()) == [("run-0",)]
    finally:
        live.close()
    assert not backup.engine_running(db_path)


def _write_engine_db(path: Path, version: int) -> None:
    """A bare engine database at schema ``version`` (written by hand: a newer agentcmd, say)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, status TEXT)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
    conn.commit()
    conn.close()


def _bad_files(tmp: Path) -> dict[str, tuple[Path, type[Exception], str]]:
    good = _engine_db(tmp / "good")
    good.close()
    copy = backup.backup(good.path, tmp / "good.db").path     # type: ignore[arg-type]
    corrupt = tmp / "corrupt.db"
    data = bytearray(copy.read_bytes())
    for page in range(1, len(data) // 4096):           # every page after the header: garbage b-trees
        data[page * 4096: page * 4096 + 64] = os.urandom(64)
    corrupt.write_bytes(bytes(data))
    other = tmp / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    newer = tmp / "newer.db"
    _write_engine_db(newer, latest_version() + 1)
    text = tmp / "text.db"
    text.write_text("not a database at all\n")
    empty = tmp / "empty.db"
    empty.write_bytes(b"")
    return {
        "missing": (tmp / "no-such.db", backup.BackupError, "does not exist"),
        "directory": (tmp / "good", backup.BackupError, "not a regular file"),
        "text": (text, backup.BackupError, "is not a SQLite database"),
        "empty": (empty, backup.BackupError, "is empty"),
        "corrupt": (corrupt, DatabaseCorruptError, "corrupt"),
        "other": (other, backup.BackupError, "not an agentcmd engine database"),
        "newer": (newer, DatabaseVersionError, f"newer than this agentcmd knows ({latest_version()})"),
    }


def test_a_database_another_process_keeps_locked_is_reported_and_nothing_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _engine_db(tmp_path / "engine")
    db.close()
    holder = sqlite3.connect(str(db.path), isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")          # e.g. a sqlite3 shell that took the file for itself
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("DELETE FROM runs WHERE run_id = 'nothing'")
    monkeypatch.setattr(backup, "BUSY_TIMEOUT_MS", 100)
    try:
        with pytest.raises(DatabaseLockedError, match="stayed locked") as err:
            backup.backup(db.path, tmp_path / "out" / "copy.db")        # type: ignore[arg-type]
        assert "run the backup again" in (err.value.fix or "")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert list((tmp_path / "out").iterdir()) == []


def test_a_damaged_engine_database_gives_no_backup(tmp_path: Path) -> None:
    bad = _bad_files(tmp_path / "bad")
    engine_dir = tmp_path / "engine"
    engine_dir.mkdir()
    shutil.copy(bad["corrupt"][0], engine_dir / DB_FILE_NAME)
    with pytest.raises(DatabaseCorruptError) as err:
        backup.backup(engine_dir / DB_FILE_NAME, tmp_path / "out" / "copy.db")
    assert "no backup was written" in (err.value.fix or "")
    assert list((tmp_path / "out").iterdir()) == []         # no partial file left behind
    first = backup.default_backup_path(tmp_path / "out")
    first.write_bytes(b"")
    assert backup.default_backup_path(tmp_path / "out") != first      # two backups in one second: both kept


def test_every_bad_file_is_refused_with_its_own_error_and_nothing_changes(tmp_path: Path) -> None:
    live = _engine_db(tmp_path / "engine", runs=4)
    live.close()
    db_path = tmp_path / "engine" / DB_FILE_NAME
    bad = _bad_files(tmp_path / "bad")
    before = _digest(tmp_path)
    for name, (path, kind, words) in bad.items():
        with pytest.raises(kind) as err:
            backup.restore(path, db_path)
        assert words in err.value.what, name          # type: ignore[attr-defined]
        assert _digest(tmp_path) == before, f"{name}: a refused restore changed files"
    assert sorted(os.listdir(tmp_path / "engine")) == [DB_FILE_NAME, DB_FILE_NAME + ".lock"]


def test_an_older_schema_is_restored_and_migrated_when_the_engine_opens_it(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    first_version, first_sql = migration_files()[0]
    conn.executescript(first_sql)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (first_version,))
    conn.commit()
    conn.close()
    db_path = tmp_path / "engine" / DB_FILE_NAME
    result = backup.restore(old, db_path)
    assert result.facts.schema_version == first_version and result.kept_aside == []
    assert result.migrates_to == latest_version()
    db = Database(db_path)
    db.open()
    assert db.read_sync(lambda c: c.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]) == \
        latest_version()
    db.close()


def test_the_cli_says_where_and_exits_with_the_error_codes(tmp_path: Path) -> None:
    engine_dir = tmp_path / "engine"
    live = _engine_db(engine_dir, runs=3)
    env = {"AGENTCMD_HOME": str(tmp_path / "home"), "AGENTCMD_SQLITE_DIR": str(engine_dir)}
    try:
        made = run_cli("backup", env=env)
        assert made.returncode == 0, made.stderr
        assert "while an engine was running" in made.stdout and "3 runs (1 in flight)" in made.stdout
        [copy] = (tmp_path / "home" / "data" / "backups").iterdir()
        assert str(copy) in made.stdout and copy.name.startswith("engine-")
        refused = run_cli("restore", str(copy), env=env)
        assert refused.returncode == 3 and "error: the engine database" in refused.stderr
        assert "fix: stop it first" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        live.close()
    missing = run_cli("restore", str(tmp_path / "nope.db"), env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    into_dir = run_cli("backup", str(tmp_path), env=env)       # a directory: a timestamped file in it
    assert into_dir.returncode == 0, into_dir.stderr
    assert f"to {tmp_path}/engine-" in into_dir.stdout
    done = run_cli("restore", str(copy), env=env)
    assert done.returncode == 0, done.stderr
    assert "kept as " + str(engine_dir / DB_FILE_NAME) + ".before-restore-" in done.stdout
