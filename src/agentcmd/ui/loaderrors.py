"""Workflow load errors as the pages show them: every field present, whatever the API gave.

The templates run with ``StrictUndefined`` (a missing field is a bug, not a
blank), so the rows are completed here: a page listing load errors must
never fail because one of them lacks a hint or a line.
"""

from __future__ import annotations

from typing import Any

FIELDS = ("source", "line", "where", "error", "hint", "kind", "workflow_id", "other")


def rows(errors: Any) -> list[dict[str, Any]]:
    """``/api/workflows`` ``errors`` -> rows with every field of ``LoadError.to_json``."""
    out: list[dict[str, Any]] = []
    for err in errors if isinstance(errors, list) else []:
        row = {k: err.get(k) for k in FIELDS} if isinstance(err, dict) else {"error": str(err)}
        row = {k: row.get(k) for k in FIELDS}
        row["source"] = str(row["source"] or "(unknown source)")
        row["error"] = str(row["error"] or "could not be loaded")
        row["hint"] = str(row["hint"] or "")
        row["where"] = str(row["where"] or (f"{row['source']}:{row['line']}" if row["line"] else row["source"]))
        out.append(row)
    return out


def for_workflow(errors: Any, workflow_id: str) -> list[dict[str, Any]]:
    """The rows about one workflow id (its duplicates)."""
    return [r for r in rows(errors) if r["workflow_id"] == workflow_id]
