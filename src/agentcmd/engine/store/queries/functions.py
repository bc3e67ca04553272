"""Functions and apps: the lists (REST's ``/v1/functions``, ``/v1/apps`` and the dashboard's ``/apps``),
one function's page, and the events that started no run of a function (``flow_skips``, migration 0003)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from agentcmd.engine.protocol import iso_ms
from agentcmd.engine.store.queries import flow, flowtext
from agentcmd.engine.store.queries.models import (
    AppRow,
    FunctionDetail,
    FunctionRow,
    RunFilter,
    SkipRow,
    parse_rfc3339,
)
from agentcmd.engine.store.queries.runs import list_runs

MAX_SKIPS = 20  # on a function's page
RECENT_RUNS = 10  # on a function's page


def list_functions(conn: sqlite3.Connection, include_archived: bool = False) -> list[dict[str, Any]]:
    sql = "SELECT slug, uuid, app_id, name, url, config, archived FROM functions"
    if not include_archived:
        sql += " WHERE archived=0"
    return [{"slug": s, "id": u, "app_id": a, "name": n, "url": url, "config": json.loads(c),
             "archived": bool(ar)} for s, u, a, n, url, c, ar in conn.execute(sql + " ORDER BY slug")]


def api_functions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """``GET /v1/functions``: the active functions, each with whether it is paused."""
    paused = flow.paused_slugs(conn)
    return [{**fn, "paused": fn["slug"] in paused} for fn in list_functions(conn)]


def _function_row(f: dict[str, Any], paused: dict[str, int]) -> FunctionRow:
    triggers: list[str] = []
    for trig in (f.get("config") or {}).get("triggers") or []:
        if isinstance(trig, dict) and trig.get("event"):
            triggers.append(f"event: {trig['event']}")
        elif isinstance(trig, dict) and trig.get("cron"):
            triggers.append(f"cron: {trig['cron']}")
    return FunctionRow(f["slug"], f["id"], f["name"], f["app_id"], triggers, bool(f["archived"]), paused.get(f["slug"]))


def function_rows(conn: sqlite3.Connection) -> list[FunctionRow]:
    """Every function, archived ones last, with when it was paused: the dashboard's lists and filters."""
    paused = flow.paused_functions(conn)
    rows = (_function_row(f, paused) for f in list_functions(conn, include_archived=True))
    return sorted(rows, key=lambda f: (f.archived, f.app_id, f.name))


def function_detail(conn: sqlite3.Connection, slug: str) -> FunctionDetail | None:
    """The dashboard's function page: the function, its flow control and state, its latest runs."""
    found = next((f for f in list_functions(conn, include_archived=True) if f["slug"] == slug), None)
    if found is None:
        return None
    config = found["config"] if isinstance(found.get("config"), dict) else {}
    paused = flow.paused_at(conn, slug)
    fn = _function_row(found, {slug: paused} if paused is not None else {})
    return FunctionDetail(fn, flowtext.flow_settings(config), flow.function_waiting(conn, slug),
                          function_skip_rows(conn, slug),
                          list_runs(conn, RunFilter(function=slug), None, RECENT_RUNS).items)


def list_apps(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [{"id": a, "url": u, "sdk": s, "framework": f, "error": e, "synced_at": iso_ms(t)}
            for a, u, s, f, e, t in conn.execute(
                "SELECT app_id, url, sdk, framework, error, synced_at FROM apps ORDER BY app_id")]


def app_rows(conn: sqlite3.Connection) -> list[AppRow]:
    """The dashboard's ``/apps``: each app with its functions."""
    functions = function_rows(conn)
    return [AppRow(a["id"], a["url"], a["sdk"], a["framework"], a["error"], parse_rfc3339(a["synced_at"]) or 0,
                   [f for f in functions if f.app_id == a["id"]]) for a in list_apps(conn)]


_SKIP_SQL = ("SELECT s.function_slug, COALESCE(f.name, s.function_slug), s.event_id, COALESCE(e.name, ''), "
             "s.reason, s.at FROM flow_skips s LEFT JOIN functions f ON f.slug = s.function_slug "
             "LEFT JOIN events e ON e.internal_id = s.event_id")


def _skip(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"event_id": row[2], "event_name": row[3], "reason": row[4], "at": iso_ms(int(row[5])),
            "function_slug": row[0], "function_name": row[1]}


def function_skips(conn: sqlite3.Connection, function_ref: str, limit: int = 20) -> list[dict[str, Any]] | None:
    """A function's latest skipped events, newest first; None if no function has that slug or uuid.

    Archived functions are found too: their skips stay readable after the app drops them.
    """
    row = conn.execute("SELECT slug FROM functions WHERE slug=? OR uuid=? ORDER BY slug=? DESC LIMIT 1",
                       (function_ref, function_ref, function_ref)).fetchone()
    if row is None:
        return None
    rows = conn.execute(f"{_SKIP_SQL} WHERE s.function_slug = ? ORDER BY s.id DESC LIMIT ?",
                        (row[0], max(1, limit))).fetchall()
    return [_skip(r) for r in rows]


def event_skips(conn: sqlite3.Connection, internal_id: str) -> list[dict[str, Any]]:
    """The functions an event did not start, and why, in the order they were skipped."""
    return [_skip(r) for r in conn.execute(f"{_SKIP_SQL} WHERE s.event_id = ? ORDER BY s.id", (internal_id,))]


def _skip_row(row: dict[str, Any]) -> SkipRow:
    return SkipRow(row["function_slug"], row["function_name"], row["event_id"], row["event_name"], row["reason"],
                   flowtext.skip_text(row["reason"]), parse_rfc3339(row["at"]) or 0)


def function_skip_rows(conn: sqlite3.Connection, slug: str, limit: int = MAX_SKIPS) -> list[SkipRow]:
    """``function_skips`` as the dashboard's rows, with the reason in words."""
    return [_skip_row(r) for r in function_skips(conn, slug, limit) or []]


def event_skip_rows(conn: sqlite3.Connection, internal_id: str) -> list[SkipRow]:
    """``event_skips`` as the dashboard's rows."""
    return [_skip_row(r) for r in event_skips(conn, internal_id)]
