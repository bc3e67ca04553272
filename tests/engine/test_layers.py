"""The engine's layers, read from its source: the HTTP layers use the command facade, the core never calls up.

Every import counts, including those under ``TYPE_CHECKING`` and inside
functions: a function-local import still ties two modules together, and
that is how the engine once grew a 33-module import circle through
``engine/app.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agentcmd

SRC = Path(agentcmd.__file__).resolve().parents[1]   # src/, wherever this test file lives
ENGINE = SRC / "agentcmd" / "engine"
HTTP_LAYERS = ("agentcmd.engine.api", "agentcmd.engine.dashboard")
ABOVE_CORE = (*HTTP_LAYERS, "agentcmd.engine.app", "agentcmd.engine.serve", "agentcmd.engine.commands")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (absolute names; ``from m import x`` counts m and m.x)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


ENGINE_MODULES = {module_name(p): p for p in sorted(ENGINE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(m for m in ENGINE_MODULES if m != "agentcmd.engine.serve"))
def test_nothing_in_the_engine_but_serve_imports_app(module: str) -> None:
    """``engine/app.py`` wires everything together, so anything it builds importing it is a circle."""
    assert not {i for i in imports_of(ENGINE_MODULES[module]) if within(i, ("agentcmd.engine.app",))}


@pytest.mark.parametrize("module", sorted(m for m in ENGINE_MODULES if not within(m, ABOVE_CORE)))
def test_the_core_never_imports_the_http_layers_or_the_facade(module: str) -> None:
    wrong = {i for i in imports_of(ENGINE_MODULES[module]) if within(i, ABOVE_CORE)}
    assert not wrong, f"{module} imports {sorted(wrong)}: the core must not depend on what sits above it"


def test_the_layers_exist_where_this_test_looks() -> None:
    """Guard against a rename that would make the checks above pass vacuously."""
    assert {"agentcmd.engine.app", "agentcmd.engine.commands", "agentcmd.engine.api.rest",
            "agentcmd.engine.dashboard.mount", "agentcmd.engine.flow.replay", "agentcmd.engine.worker"} \
        <= set(ENGINE_MODULES)
    assert "agentcmd.engine.commands" in imports_of(ENGINE_MODULES["agentcmd.engine.api.rest"])
