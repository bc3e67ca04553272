"""Reading the Markdown tables of docs/ that tests hold against the code (so the prose cannot drift)."""

from __future__ import annotations

from collections.abc import Container
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def table_rows(doc: Path, first_cells: Container[str]) -> dict[str, list[str]]:
    """The rows of ``doc``'s tables whose first cell is one of ``first_cells``: first cell -> the other cells."""
    rows = {}
    for line in doc.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in first_cells:
            rows[cells[0]] = cells[1:]
    return rows
