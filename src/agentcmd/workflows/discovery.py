"""Find workflows: ``.agentcmd/workflows/*.py`` under the project, then entry points.

Each file is imported on its own (module name ``agentcmd_user_workflows.<stem>``);
every ``Workflow`` among its globals is taken. A file that fails to import
(syntax error, missing module, a bad ``define_workflow``) becomes a
``LoadError`` with the file, the line in that file and the error, and the
other files still load. Installed packages contribute workflows through the
``agentcmd.workflows`` entry-point group (an object that is a Workflow, a
list of them, or a module holding them). Two workflows with one id: the
first wins and the second is reported.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from agentcmd.workflows.define import Workflow

WORKFLOWS_DIR = Path(".agentcmd") / "workflows"
ENTRY_POINT_GROUP = "agentcmd.workflows"
_MODULE_PREFIX = "agentcmd_user_workflows"


@dataclasses.dataclass(frozen=True)
class LoadError:
    """A workflow source that could not be loaded."""

    source: str
    line: int | None
    error: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.error}"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "error": self.error}


@dataclasses.dataclass
class Discovered:
    workflows: dict[str, Workflow] = dataclasses.field(default_factory=dict)
    errors: list[LoadError] = dataclasses.field(default_factory=list)

    def add(self, workflow: Workflow, source: str) -> None:
        existing = self.workflows.get(workflow.spec.id)
        if existing is not None and existing is not workflow:
            self.errors.append(LoadError(source, None, f"duplicate workflow id {workflow.spec.id!r} "
                                                       f"(already defined in {existing.source}); skipped"))
            return
        self.workflows[workflow.spec.id] = workflow


def _error_line(exc: BaseException, path: Path) -> int | None:
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename).resolve() == path.resolve():
        return exc.lineno
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if Path(frame.f_code.co_filename).resolve() == path.resolve():
            line = lineno
    return line


def _describe(exc: BaseException) -> str:
    what = getattr(exc, "what", None) or str(exc)
    if isinstance(exc, SyntaxError):
        what = exc.msg
    return f"{type(exc).__name__}: {what}"


def _workflows_in(module: ModuleType | Any) -> list[Workflow]:
    if isinstance(module, Workflow):
        return [module]
    if isinstance(module, list | tuple):
        return [w for w in module if isinstance(w, Workflow)]
    return [v for v in vars(module).values() if isinstance(v, Workflow)] if isinstance(module, ModuleType) else []


def load_file(path: Path) -> tuple[list[Workflow], LoadError | None]:
    """Import one workflow file; never raises for the file's own errors."""
    name = f"{_MODULE_PREFIX}.{path.stem.replace('-', '_').replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return [], LoadError(str(path), None, "not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a user's file: report it, keep loading the others
        sys.modules.pop(name, None)
        return [], LoadError(str(path), _error_line(exc, path), _describe(exc))
    found = _workflows_in(module)
    for wf in found:
        wf.source = str(path)
    return found, None


def discover(project_dir: Path | None, *, entry_points: bool = True) -> Discovered:
    """All workflows of a project, plus the load errors (never raises for a user's file)."""
    result = Discovered()
    if project_dir is not None:
        folder = project_dir / WORKFLOWS_DIR
        for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
            if path.name.startswith("_"):
                continue
            workflows, error = load_file(path)
            if error is not None:
                result.errors.append(error)
            for wf in workflows:
                result.add(wf, str(path))
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            source = f"entry point {ep.name} = {ep.value}"
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken package must not hide the project's workflows
                result.errors.append(LoadError(source, None, _describe(exc)))
                continue
            found = _workflows_in(loaded)
            if not found:
                result.errors.append(LoadError(source, None, "no workflow found (expected a Workflow, "
                                                             "a list of them, or a module holding them)"))
            for wf in found:
                result.add(wf, source)
    return result
