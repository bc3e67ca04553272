"""Discovery: every good file loads; each broken one is reported with file, line and error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentcmd.workflows.discovery import discover

GOOD = '''
from agentcmd import define_workflow

@define_workflow(id="{id}", phases=["a"])
async def wf(ctx, step):
    return 1
'''


def test_broken_files_are_reported_with_line_and_the_others_still_load(project: Path, write_workflow: Any) -> None:
    write_workflow("a_good.py", GOOD.format(id="one"))
    write_workflow("b_syntax.py", "x = 1\ndef broken(:\n    pass\n")
    write_workflow("c_import.py", "import os\nimport no_such_module_here\n")
    write_workflow("d_definition.py", "from agentcmd import define_workflow\n\n\n"
                                      "@define_workflow(id='two', phases=['a', 'a'])\nasync def wf(ctx, step):\n"
                                      "    pass\n")
    write_workflow("e_good.py", GOOD.format(id="three"))
    write_workflow("_helper.py", "raise RuntimeError('never imported')\n")
    found = discover(project, entry_points=False)
    assert sorted(found.workflows) == ["one", "three"]
    errors = {Path(e.source).name: e for e in found.errors}
    assert set(errors) == {"b_syntax.py", "c_import.py", "d_definition.py"}
    assert errors["b_syntax.py"].line == 2 and errors["b_syntax.py"].error.startswith("SyntaxError")
    assert errors["c_import.py"].line == 2 and "no_such_module_here" in errors["c_import.py"].error
    assert errors["d_definition.py"].line == 4 and "duplicates" in errors["d_definition.py"].error
    assert str(errors["c_import.py"]).startswith(str(project / ".agentcmd" / "workflows" / "c_import.py") + ":2: ")


def test_a_duplicate_id_is_reported_and_the_first_wins(project: Path, write_workflow: Any) -> None:
    write_workflow("a.py", GOOD.format(id="same"))
    write_workflow("b.py", GOOD.format(id="same"))
    found = discover(project, entry_points=False)
    assert found.workflows["same"].source is not None and found.workflows["same"].source.endswith("a.py")
    [err] = found.errors
    assert err.source.endswith("b.py") and "duplicate workflow id 'same'" in err.error


def test_a_project_without_workflows_is_empty_not_an_error(tmp_path: Path) -> None:
    found = discover(tmp_path, entry_points=False)
    assert found.workflows == {} and found.errors == []


def test_entry_points_contribute_workflows(tmp_path: Path, monkeypatch: Any) -> None:
    import importlib.metadata
    import sys

    pkg = tmp_path / "site"
    (pkg / "acme_flows").mkdir(parents=True)
    (pkg / "acme_flows" / "__init__.py").write_text(GOOD.format(id="from-package"))
    dist = pkg / "acme_flows-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-flows\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[agentcmd.workflows]\nacme = acme_flows\nbroken = acme_missing\n")
    monkeypatch.syspath_prepend(str(pkg))
    importlib.invalidate_caches()
    try:
        found = discover(None)
    finally:
        sys.modules.pop("acme_flows", None)
    assert "from-package" in found.workflows
    assert any("acme_missing" in e.error and e.source.startswith("entry point broken") for e in found.errors)
