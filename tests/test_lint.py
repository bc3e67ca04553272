"""Strictness is configured and kept: ruff on the whole tree, mypy --strict on src/, and the house's shape.

The shape (docs/architecture.md): SQL only in engine/store/; the app
server and its UI import nothing from the engine; the engine's core never
imports its HTTP layers (also tests/engine/test_layers.py); the store
imports no policy; no import cycles; no module over 600 lines and no
function over 80.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict_on_src(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy")], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


# -- The shape of the house (docs/architecture.md). Each rule names the place a change belongs instead. --

SRC = ROOT / "src" / "agentcmd"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
_SQL = re.compile(r"\b(SELECT\s[\s\S]+?\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
                  r"CREATE\s+(TABLE|INDEX)|PRAGMA\s+\w+)\b")


def _modules() -> list[tuple[str, ast.Module]]:
    return [(p.relative_to(SRC).as_posix(), ast.parse(p.read_text(), str(p))) for p in sorted(SRC.rglob("*.py"))]


def _imports(tree: ast.Module, module: str) -> set[str]:
    """Every module ``tree`` imports, function-local imports included, relative imports resolved."""
    package = module if module in _PACKAGES else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            subs = {f"{base}.{alias.name}" for alias in node.names}
            found.update(subs if subs <= _MODULE_NAMES else {base} | (subs & _MODULE_NAMES))
    return found


def _dotted(rel: str) -> str:
    return "agentcmd." + rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


_PACKAGES = {_dotted(p.relative_to(SRC).as_posix()) for p in SRC.rglob("__init__.py")}
_MODULE_NAMES = {_dotted(p.relative_to(SRC).as_posix()) for p in SRC.rglob("*.py")}


def test_sql_is_written_only_in_the_engine_store() -> None:
    """A statement has one home: ``engine/store/<noun>.py`` (writes) or ``engine/store/queries/`` (reads).

    The app server keeps no database of its own (its records are files, e.g. ``server/webhookstore.py``)."""
    offenders = []
    for rel, tree in _modules():
        if rel.startswith("engine/store/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.search(node.value):
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, f"SQL outside engine/store/ (move it to the store's module for that noun): {offenders}"


def test_the_queue_table_is_written_only_by_the_store_queue_module() -> None:
    """Every ``INSERT INTO queue`` / ``UPDATE queue`` / ``DELETE FROM queue`` has one home: engine/store/queue.py."""
    writes = re.compile(r"\b(INSERT\s+(OR\s+\w+\s+)?INTO\s+queue|UPDATE\s+queue|DELETE\s+FROM\s+queue)\b")
    offenders = [f"{rel}:{node.lineno}" for rel, tree in _modules() if rel != "engine/store/queue.py"
                 for node in ast.walk(tree)
                 if isinstance(node, ast.Constant) and isinstance(node.value, str) and writes.search(node.value)]
    assert not offenders, f"write the queue through engine/store/queue.py: {offenders}"


def test_the_app_server_and_its_ui_import_nothing_from_the_engine() -> None:
    """The app server talks to the engine over HTTP only, so it runs against any Inngest server."""
    offenders = [f"{rel} imports {name}" for rel, tree in _modules() if rel.startswith(("server/", "ui/"))
                 for name in sorted(_imports(tree, _dotted(rel))) if name.startswith("agentcmd.engine")]
    assert not offenders, offenders


def test_the_store_calls_no_policy() -> None:
    """The store is the bottom layer: engine/store/ imports nothing else from the engine."""
    offenders = [f"{rel} imports {name}" for rel, tree in _modules() if rel.startswith("engine/store/")
                 for name in sorted(_imports(tree, _dotted(rel)))
                 if name.startswith("agentcmd.engine.") and not name.startswith("agentcmd.engine.store")
                 and name != "agentcmd.engine.protocol"]
    assert not offenders, offenders


def test_no_module_is_over_600_lines() -> None:
    big = [(rel, n) for rel, _ in _modules() if (n := len((SRC / rel).read_text().splitlines())) > MAX_MODULE_LINES]
    assert not big, f"split these by concept: {big}"


def test_no_function_is_over_80_lines() -> None:
    long = [f"{rel}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"   # type: ignore[operator]
            for rel, tree in _modules() for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]  # type: ignore[operator]
    assert not long, f"split these (route handlers at module level): {long}"


def test_no_two_modules_import_each_other_even_through_others() -> None:
    """No import cycle anywhere in src/, counting imports inside functions and under TYPE_CHECKING.

    A cycle is how a 31-module knot once grew through the engine: each
    function-local import looked harmless. Break one with a Protocol at the
    lower layer, or move the shared type to a module of its own.
    """
    graph = {_dotted(rel): {name for name in _imports(tree, _dotted(rel)) if name in _MODULE_NAMES}
             for rel, tree in _modules()}
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, cycles


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found
