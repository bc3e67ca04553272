"""Find workflows: ``.agentcmd/workflows/*.py`` under the project, then entry points.

Each file is imported on its own (module name ``agentcmd_user_workflows.<stem>``);
every ``Workflow`` among its globals is taken. A file that fails to import
(syntax error, missing module, an exception at import, a bad
``define_workflow``) becomes a ``LoadError`` with the file, the line in that
file, the error, what kind of error it is and a hint; the other files still
load. Installed packages contribute workflows through the
``agentcmd.workflows`` entry-point group (an object that is a Workflow, a
list of them, or a module holding them).

Two definitions of one workflow id are an error, never a silent
replacement: exactly one definition is served and every other one is a
``LoadError`` of kind ``duplicate_id`` naming both places. Which one is
served is decided so that a workflow that already runs keeps its code:

1. the definition from the source given in ``keep`` for that id (the one
   already served, passed by the app server across reloads and restarts,
   see ``agentcmd.workflows.served``);
2. if that source still exists but failed to load, none: the id stays
   reserved for it (serving the other definition to its runs would run
   the wrong steps), and each other definition is reported;
3. otherwise the first one loaded (files by name, then entry points).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from agentcmd.workflows.define import Workflow

WORKFLOWS_DIR = Path(".agentcmd") / "workflows"
ENTRY_POINT_GROUP = "agentcmd.workflows"
_MODULE_PREFIX = "agentcmd_user_workflows"

DUPLICATE_HINT = ("give one of them another id (ids are unique across .agentcmd/workflows/ and installed "
                  "packages), or delete one")


@dataclasses.dataclass(frozen=True)
class LoadError:
    """A workflow source that could not be loaded, or a definition that is not served.

    ``kind`` is one of ``syntax_error``, ``import_error``, ``exception`` (raised
    while the file ran), ``invalid_workflow`` (a refused ``define_workflow``),
    ``duplicate_id``, ``entry_point``, ``not_python``. For ``duplicate_id``,
    ``workflow_id`` is the id and ``other`` the source (with line) of the
    definition that is served, or that the id is reserved for.
    """

    source: str
    line: int | None
    error: str
    hint: str = ""
    kind: str = "exception"
    workflow_id: str | None = None
    other: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.error}"

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "where": self.where, "error": self.error,
                "hint": self.hint, "kind": self.kind, "workflow_id": self.workflow_id, "other": self.other}


@dataclasses.dataclass
class Discovered:
    workflows: dict[str, Workflow] = dataclasses.field(default_factory=dict)
    errors: list[LoadError] = dataclasses.field(default_factory=list)
    reserved: dict[str, str] = dataclasses.field(default_factory=dict)
    """Ids served by a source in ``keep`` that failed to load this time: id -> that source (kept for it)."""

    def add(self, workflow: Workflow, source: str) -> None:
        """Serve ``workflow`` unless its id is taken (then it is reported as a duplicate)."""
        existing = self.workflows.get(workflow.spec.id)
        if existing is not None and existing is not workflow:
            self.errors.append(_duplicate(workflow, source, existing, served=True))
            return
        self.workflows[workflow.spec.id] = workflow

    def sources(self) -> dict[str, str]:
        """Workflow id -> the source it is served from or reserved for (``keep`` for the next discovery)."""
        served = {wid: wf.source for wid, wf in self.workflows.items() if wf.source}
        return {**self.reserved, **served}

    @property
    def duplicates(self) -> list[LoadError]:
        return [e for e in self.errors if e.kind == "duplicate_id"]


def _line_of(workflow: Workflow) -> int | None:
    code = getattr(getattr(workflow, "body", None), "__code__", None)
    return getattr(code, "co_firstlineno", None)


def _place(workflow: Workflow, source: str) -> str:
    line = _line_of(workflow) if source == workflow.source else None
    return f"{source}:{line}" if line else source


def _duplicate(workflow: Workflow, source: str, owner: Workflow | None, *, served: bool,
               owner_source: str | None = None) -> LoadError:
    wid = workflow.spec.id
    other = _place(owner, owner.source or "") if owner is not None else (owner_source or "")
    if owner is not None and (owner.source or "") == source:
        what = f"duplicate workflow id {wid!r}: defined twice in this file (also at {other}); this one is not served"
    elif served:
        what = f"duplicate workflow id {wid!r}: also defined in {other}, which is served; this one is not served"
    else:
        what = (f"duplicate workflow id {wid!r}: also defined in {other}, which serves it but failed to load; "
                f"this one is not served (the id stays with {other} so its runs do not get other steps)")
    hint = (DUPLICATE_HINT + f"; runs of {wid!r} keep using {other}" if served
            else f"fix the error in {other} (listed separately), then " + DUPLICATE_HINT)
    return LoadError(source, _line_of(workflow) if source == workflow.source else None, what, hint,
                     "duplicate_id", wid, other)


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


def _classify(exc: BaseException, path: Path) -> tuple[str, str]:
    """The kind of a load failure and a hint saying what to do about it."""
    from agentcmd.workflows.define import WorkflowDefinitionError

    if isinstance(exc, SyntaxError):
        return "syntax_error", f"correct the syntax on that line ('python -m py_compile {path}' shows it)"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return "import_error", (f"install {exc.name!r} in the Python environment the app server runs in, "
                                "or fix the import on that line")
    if isinstance(exc, ImportError):
        return "import_error", "fix the import on that line"
    if isinstance(exc, WorkflowDefinitionError):
        return "invalid_workflow", exc.fix or "fix the define_workflow arguments"
    return "exception", (f"correct the code on that line: the file raised {type(exc).__name__} when it was imported "
                         "(a workflow file runs when it is loaded, so it should only define workflows)")


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
        return [], LoadError(str(path), None, "not an importable Python file",
                             "workflow files are Python files named <name>.py", "not_python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a user's file: report it, keep loading the others
        sys.modules.pop(name, None)
        line = _error_line(exc, path)
        kind, hint = _classify(exc, path)
        return [], LoadError(str(path), line, _describe(exc), hint, kind)
    found = _workflows_in(module)
    for wf in found:
        wf.source = str(path)
    return found, None


def _entry_point_workflows(result: Discovered) -> list[tuple[Workflow, str]]:
    out: list[tuple[Workflow, str]] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {ep.name} = {ep.value}"
        hint = f"fix or uninstall the package that declares the {ENTRY_POINT_GROUP!r} entry point {ep.name!r}"
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken package must not hide the project's workflows
            result.errors.append(LoadError(source, None, _describe(exc), hint, "entry_point"))
            continue
        found = _workflows_in(loaded)
        if not found:
            result.errors.append(LoadError(source, None, "no workflow found (expected a Workflow, "
                                                         "a list of them, or a module holding them)",
                                           hint, "entry_point"))
        for wf in found:
            if wf.source is None or not Path(wf.source).is_file():
                wf.source = source
            out.append((wf, wf.source))
    return out


def _exists(source: str) -> bool:
    return source.startswith("entry point ") or Path(source).is_file()


def discover(project_dir: Path | None, *, entry_points: bool = True,
             keep: Mapping[str, str] | None = None) -> Discovered:
    """All workflows of a project, plus the load errors (never raises for a user's file).

    ``keep`` maps a workflow id to the source that served it so far; a
    duplicate of that id never takes it over (see the module docstring).
    """
    result = Discovered()
    candidates: list[tuple[Workflow, str]] = []
    if project_dir is not None:
        folder = project_dir / WORKFLOWS_DIR
        for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
            if path.name.startswith("_"):
                continue
            workflows, error = load_file(path)
            if error is not None:
                result.errors.append(error)
            candidates.extend((wf, str(path)) for wf in workflows)
    if entry_points:
        candidates.extend(_entry_point_workflows(result))
    failed = {e.source for e in result.errors}
    by_id: dict[str, list[tuple[Workflow, str]]] = {}
    for wf, source in candidates:
        same = by_id.setdefault(wf.spec.id, [])
        if not any(other is wf for other, _ in same):  # a file may import another file's workflow
            same.append((wf, source))
    result.reserved = {wid: src for wid, src in (keep or {}).items() if src in failed and _exists(src)}
    for wid, defs in by_id.items():
        kept = (keep or {}).get(wid)
        if wid in result.reserved:
            result.errors.extend(_duplicate(wf, source, None, served=False, owner_source=kept)
                                 for wf, source in defs)
            continue
        served = next(((wf, s) for wf, s in defs if s == kept), defs[0])
        result.workflows[wid] = served[0]
        result.errors.extend(_duplicate(wf, source, served[0], served=True)
                             for wf, source in defs if wf is not served[0])
    # Keep the load order of the served workflows (files by name, then entry points).
    order = {id(wf): i for i, (wf, _) in enumerate(candidates)}
    result.workflows = dict(sorted(result.workflows.items(), key=lambda item: order[id(item[1])]))
    return result
