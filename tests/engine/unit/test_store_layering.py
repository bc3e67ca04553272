"""The store owns the tables: flow-control policy calls it, never the other way round.

engine/store/ holds every SQL statement of the write side; engine/flow/
decides (keys, GCRA, which limit applies) and calls the store. A store
module that imports engine/flow would call up into policy, and SQL in a
flow module would put a table's rows in two places.
"""

from __future__ import annotations

import ast
from pathlib import Path

import agentcmd.engine.flow
import agentcmd.engine.store

STORE = Path(agentcmd.engine.store.__file__).parent
FLOW = Path(agentcmd.engine.flow.__file__).parent
# Nothing may run SQL in flow/ (its read questions are the public read path's, store/queries).
READ_QUESTIONS: set[tuple[str, str]] = set()


def _imports(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_no_store_module_imports_the_flow_policy() -> None:
    offenders = {p.name: sorted(i for i in _imports(ast.parse(p.read_text())) if i.startswith("agentcmd.engine.flow"))
                 for p in STORE.glob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_flow_modules_run_no_sql_of_their_own() -> None:
    found = []
    for path in sorted(FLOW.glob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) or (path.name, fn.name) in READ_QUESTIONS:
                continue
            for call in ast.walk(fn):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr in ("execute", "executemany", "executescript")):
                    found.append(f"{path.name}:{fn.name}")
    assert found == []
