"""Keyset paging, written once: every newest-first list in the read path pages through ``keyset``.

A page is ``<key> < :before ORDER BY <key> DESC LIMIT n+1``: run and event
ids are ULIDs, so id order is time order, and page N costs the same index
range scan as page 1 however many rows exist; nothing loads a whole table.
The extra row only says whether another page follows; the cursor handed out
is the last id shown.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agentcmd.engine.store.queries.models import Page

Row = tuple[Any, ...]


def where_sql(parts: list[str]) -> str:
    """``WHERE a AND b`` for the non-empty conditions, or nothing."""
    return f"WHERE {' AND '.join(parts)}" if parts else ""


def keyset(conn: sqlite3.Connection, select: str, where: list[str], args: list[Any], key: str,
           before: str | None, limit: int, cap: int) -> Page[Row]:
    """One page of ``select`` (``SELECT <key>, ... FROM ...``) filtered by ``where``, newest first.

    ``limit`` is clamped to 1..``cap``; ``before`` (exclusive) is the
    previous page's ``next_cursor``. The key must be the first column.
    """
    limit = max(1, min(limit, cap))
    parts, params = list(where), list(args)
    if before:
        parts.append(f"{key} < ?")
        params.append(before)
    rows = conn.execute(f"{select} {where_sql(parts)} ORDER BY {key} DESC LIMIT ?", (*params, limit + 1)).fetchall()
    page = rows[:limit]
    return Page(page, str(page[-1][0]) if len(rows) > limit else None)
