"""Numbered ``NNNN_name.sql`` files applied in order, tracked in ``schema_version``.

All pending migrations run in one transaction at startup. A database whose
version is newer than the newest file here was written by a newer agentcmd:
we refuse to touch it rather than guess.
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

from agentcmd.errors import DatabaseVersionError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files() -> list[tuple[int, str]]:
    """(version, sql) for every migration shipped with this package, in order."""
    out: list[tuple[int, str]] = []
    for entry in resources.files(__name__).iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append((int(m.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(out)


def latest_version() -> int:
    files = migration_files()
    return files[-1][0] if files else 0


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def apply_migrations(conn: sqlite3.Connection, where: str) -> int:
    """Bring the schema to the latest version; return the version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = current_version(conn)
        latest = latest_version()
        if version > latest:
            raise DatabaseVersionError(
                f"the engine database {where} has schema version {version}, newer than this "
                f"agentcmd understands ({latest})",
                "upgrade agentcmd ('pip install -U agentcmd'), or point --sqlite-dir at another "
                "directory to start with an empty database")
        for number, sql in migration_files():
            if number <= version:
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
            version = number
        conn.execute("COMMIT")
        return version
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(sql: str) -> list[str]:
    """Split a migration on ';' at line ends (our files keep one statement per ';\\n')."""
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]
