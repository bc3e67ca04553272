"""``agentcmd backup [FILE]`` and ``agentcmd restore FILE``: the engine database, copied and put back.

The work is ``agentcmd.engine.store.backup``; this module finds the
database (the settings' ``sqlite_dir``, or ``--sqlite-dir``) and words the
result. Only Typer is imported at module level.
"""

from __future__ import annotations

from pathlib import Path

import typer

from agentcmd.cli._console import info

_SQLITE_DIR = typer.Option(
    None, "--sqlite-dir",
    help="Directory of the engine database (default: AGENTCMD_SQLITE_DIR, else $AGENTCMD_HOME/data/engine).")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def _runs(runs: int, in_flight: int) -> str:
    return f"{runs} run{'s' if runs != 1 else ''} ({in_flight} in flight)"


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup_cmd(
        file: Path | None = typer.Argument(
            None, help="Where to write the backup: a file, or a directory to put engine-<UTC time>.db in "
                       "(default: $AGENTCMD_DATA_DIR/backups/engine-<UTC time>.db)."),
        sqlite_dir: Path | None = _SQLITE_DIR,
        force: bool = typer.Option(False, "--force", help="Replace FILE if it exists."),
    ) -> None:
        """Copy the engine database to FILE, consistently, while the engine runs or not.

        Uses SQLite's online backup API in small steps (the engine keeps working), then checks the copy
        (integrity, schema version) and writes it mode 0600 as a single self-contained file. Prints where it
        is, its size and how many runs it holds. Restore it with 'agentcmd restore FILE'.
        """
        from agentcmd.config import load_settings
        from agentcmd.engine.store import DB_FILE_NAME
        from agentcmd.engine.store.backup import backup, default_backup_path

        settings = load_settings(sqlite_dir=sqlite_dir)
        db_path = settings.resolved_sqlite_dir.expanduser().absolute() / DB_FILE_NAME
        backups = settings.resolved_data_dir.expanduser().absolute() / "backups"
        if file is None:
            target = default_backup_path(backups)
        elif file.is_dir():                         # a folder of backups: a timestamped file in it
            target = default_backup_path(file)
        else:
            target = file
        result = backup(db_path, target.expanduser().absolute(), force=force)
        facts = result.facts
        state = "while an engine was running" if result.engine_running else "(no engine was running)"
        info(f"backed up {db_path} {state} to {result.path} (mode 0600): {_size(result.size)}, "
             f"{_runs(facts.runs, facts.in_flight)}, schema version {facts.schema_version}, "
             f"integrity ok, in {result.seconds:.2f} s")
        info(f"restore it with: agentcmd restore {result.path}")

    @app.command("restore")
    def restore_cmd(
        file: Path = typer.Argument(..., help="A backup written by 'agentcmd backup' (or a copy of an engine.db)."),
        sqlite_dir: Path | None = _SQLITE_DIR,
    ) -> None:
        """Replace the engine database by FILE; the engine must be stopped.

        Refuses while an engine uses the database. Checks FILE first (integrity, an agentcmd engine database,
        a schema version this agentcmd knows; an older one is migrated when the engine next starts), then
        renames the current database aside (engine.db.before-restore-<UTC time>, in the same directory) and
        puts the copy in its place. At the next start, runs that were in flight in the backup carry on.
        """
        from agentcmd.config import load_settings
        from agentcmd.engine.store import DB_FILE_NAME
        from agentcmd.engine.store.backup import restore

        settings = load_settings(sqlite_dir=sqlite_dir)
        db_path = settings.resolved_sqlite_dir.expanduser().absolute() / DB_FILE_NAME
        result = restore(file.expanduser().absolute(), db_path)
        facts = result.facts
        info(f"restored {result.source} to {result.path}: {_runs(facts.runs, facts.in_flight)}, "
             f"schema version {facts.schema_version}, integrity ok")
        if result.kept_aside:
            info("the replaced database is kept as " + ", ".join(str(p) for p in result.kept_aside))
        else:
            info(f"there was no database at {db_path} before")
        if result.migrates_to is not None:
            info(f"the engine migrates it to schema version {result.migrates_to} when it starts")
        info("start the engine ('agentcmd start'): runs in flight in the backup carry on")
