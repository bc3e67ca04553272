"""The apps and functions tables, and the cron rows of functions an app no longer lists."""

from __future__ import annotations

import sqlite3

from agentcmd.engine.store.models import NewItem, QueueKind
from agentcmd.engine.store.queue import drop_crons_txn, enqueue_txn


def upsert_app_txn(conn: sqlite3.Connection, app_id: str, url: str, sdk: str, framework: str,
                   checksum: str, functions: list[tuple[str, str, str, str, str]], now: int) -> list[str]:
    """Replace an app's functions; ``functions`` = (slug, uuid, name, url, config json).

    Functions the app no longer lists are archived (they stop matching).
    Returns the slugs that were archived.
    """
    conn.execute(
        "INSERT INTO apps (app_id, url, sdk, framework, checksum, error, synced_at) VALUES (?,?,?,?,?,NULL,?) "
        "ON CONFLICT(app_id) DO UPDATE SET url=excluded.url, sdk=excluded.sdk, framework=excluded.framework, "
        "checksum=excluded.checksum, error=NULL, synced_at=excluded.synced_at",
        (app_id, url, sdk, framework, checksum, now))
    keep = {f[0] for f in functions}
    archived = [r[0] for r in conn.execute(
        "SELECT slug FROM functions WHERE app_id=? AND archived=0", (app_id,)) if r[0] not in keep]
    for slug in archived:
        conn.execute("UPDATE functions SET archived=1, updated_at=? WHERE slug=?", (now, slug))
        drop_crons_txn(conn, slug)
    for slug, fn_uuid, name, fn_url, config in functions:
        conn.execute(
            "INSERT INTO functions (slug, uuid, app_id, name, url, config, archived, updated_at) "
            "VALUES (?,?,?,?,?,?,0,?) ON CONFLICT(slug) DO UPDATE SET app_id=excluded.app_id, "
            "name=excluded.name, url=excluded.url, config=excluded.config, archived=0, "
            "updated_at=excluded.updated_at",
            (slug, fn_uuid, app_id, name, fn_url, config, now))
    return archived


def set_app_error_txn(conn: sqlite3.Connection, url: str, error: str | None, now: int) -> None:
    conn.execute("UPDATE apps SET error=? WHERE url=?", (error, url))


def record_sync_error_txn(conn: sqlite3.Connection, app_id: str, url: str, error: str, now: int) -> None:
    """Mark an app's sync failed; an app seen for the first time gets a row with no functions.

    Its functions (if it had synced before) are kept as they were: the bad
    declaration never replaces a good one.
    """
    conn.execute(
        "INSERT INTO apps (app_id, url, error, synced_at) VALUES (?,?,?,?) "
        "ON CONFLICT(app_id) DO UPDATE SET error=excluded.error", (app_id, url, error, now))


def app_checksum_txn(conn: sqlite3.Connection, app_id: str) -> str | None:
    """The checksum of the app's last stored function list (None: never synced)."""
    row = conn.execute("SELECT checksum FROM apps WHERE app_id=?", (app_id,)).fetchone()
    return None if row is None else row[0]


def mark_synced_txn(conn: sqlite3.Connection, app_id: str, now: int) -> None:
    """The app synced again with the same function list: clear its error, note the time."""
    conn.execute("UPDATE apps SET error=NULL, synced_at=? WHERE app_id=?", (now, app_id))


def schedule_crons_txn(conn: sqlite3.Connection, slug: str, ticks: list[tuple[str, int]]) -> None:
    """Replace a function's cron rows: one row per (cron spec, first tick), keyed by its position."""
    drop_crons_txn(conn, slug)
    for i, (spec, at) in enumerate(ticks):
        key = f"cron:{slug}:{i}"
        enqueue_txn(conn, None, NewItem(QueueKind.CRON, None, at, {"function": slug, "cron": spec, "dedupe": key},
                                        dedupe=key))
