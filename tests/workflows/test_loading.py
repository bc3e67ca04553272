"""Discovery: every good file loads; each broken one is reported with file, line and error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentcmd.workflows.loading import discover
from agentcmd.workflows.served import discover_served

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


def test_every_kind_of_load_error_has_its_kind_line_and_a_hint(project: Path, write_workflow: Any) -> None:
    write_workflow("syntax.py", "x = 1\ndef broken(:\n    pass\n")
    write_workflow("missing.py", "import os\nimport no_such_module_here\n")
    write_workflow("raises.py", "x = 1\n\nraise RuntimeError('boom at import')\n")
    write_workflow("bad_args.py", "from agentcmd import define_workflow\n\n"
                                  "@define_workflow(id='w', retries=99)\nasync def wf(ctx, step):\n    pass\n")
    write_workflow("sync_body.py", "from agentcmd import define_workflow\n\n"
                                   "@define_workflow(id='s')\ndef wf(ctx, step):\n    pass\n")
    found = discover(project, entry_points=False)
    errors = {Path(e.source).name: e for e in found.errors}
    assert {n: (e.kind, e.line) for n, e in errors.items()} == {
        "syntax.py": ("syntax_error", 2), "missing.py": ("import_error", 2), "raises.py": ("exception", 3),
        "bad_args.py": ("invalid_workflow", 3), "sync_body.py": ("invalid_workflow", 3)}
    assert "py_compile" in errors["syntax.py"].hint
    assert "'no_such_module_here'" in errors["missing.py"].hint and "install" in errors["missing.py"].hint
    assert "RuntimeError" in errors["raises.py"].hint
    assert errors["bad_args.py"].hint == "e.g. retries=2"  # define_workflow's own fix
    assert "async def" in errors["sync_body.py"].hint
    body = errors["syntax.py"].to_json()
    assert body["where"] == f"{errors['syntax.py'].source}:2" and body["hint"] and body["kind"] == "syntax_error"


def test_a_duplicate_id_names_both_files_and_the_first_by_name_is_served(project: Path, write_workflow: Any) -> None:
    a = write_workflow("a.py", GOOD.format(id="same"))
    b = write_workflow("b.py", "\n\n" + GOOD.format(id="same"))
    found = discover(project, entry_points=False)
    assert found.workflows["same"].source == str(a)
    [err] = found.errors
    assert (err.kind, err.source, err.line, err.workflow_id, err.other) == ("duplicate_id", str(b), 6, "same",
                                                                           f"{a}:4")
    assert f"duplicate workflow id 'same': also defined in {a}:4, which is served" in err.error
    assert "another id" in err.hint and f"runs of 'same' keep using {a}:4" in err.hint
    assert found.duplicates == [err] and found.sources() == {"same": str(a)}


def test_one_file_defining_an_id_twice_is_reported(project: Path, write_workflow: Any) -> None:
    path = write_workflow("twice.py", GOOD.format(id="same") + GOOD.format(id="same").replace("def wf", "def wf2"))
    found = discover(project, entry_points=False)
    [err] = found.errors
    assert found.workflows["same"].body.__name__ == "wf"
    assert err.source == str(path) and err.line == 10 and "defined twice in this file" in err.error
    assert err.other == f"{path}:4"


def test_a_newcomer_that_sorts_first_does_not_take_over_a_served_id(project: Path, write_workflow: Any) -> None:
    fix = write_workflow("fix.py", GOOD.format(id="fix"))
    served = discover(project, entry_points=False)
    newcomer = write_workflow("0_fix.py", GOOD.format(id="fix").replace('["a"]', '["other"]'))
    # Without the record of what is served, the first by name would win ...
    assert discover(project, entry_points=False).workflows["fix"].source == str(newcomer)
    # ... with it, the served definition stays and the newcomer is the reported duplicate.
    found = discover(project, entry_points=False, keep=served.sources())
    assert found.workflows["fix"].source == str(fix) and found.workflows["fix"].spec.phases == ("a",)
    [err] = found.errors
    assert err.source == str(newcomer) and err.other == f"{fix}:4"


def test_an_id_whose_file_breaks_stays_reserved_for_it(project: Path, write_workflow: Any) -> None:
    fix = write_workflow("fix.py", GOOD.format(id="fix"))
    served = discover(project, entry_points=False).sources()
    fix.write_text("def broken(:\n")
    other = write_workflow("other.py", GOOD.format(id="fix"))
    found = discover(project, entry_points=False, keep=served)
    assert "fix" not in found.workflows and found.reserved == {"fix": str(fix)}
    assert found.sources() == {"fix": str(fix)}  # still recorded for it, so the next discovery keeps it
    syntax, dup = sorted(found.errors, key=lambda e: e.kind != "syntax_error")
    assert syntax.source == str(fix) and syntax.kind == "syntax_error"
    assert dup.source == str(other) and dup.other == str(fix) and "failed to load" in dup.error
    assert dup.hint.startswith(f"fix the error in {fix}")
    # Repaired, it is served again; deleted, the id is free for the other file.
    fix.write_text(GOOD.format(id="fix"))
    assert discover(project, entry_points=False, keep=served).workflows["fix"].source == str(fix)
    fix.unlink()
    found = discover(project, entry_points=False, keep=served)
    assert found.workflows["fix"].source == str(other) and found.errors == []


def test_the_app_servers_record_keeps_the_served_file_across_restarts(
        project: Path, write_workflow: Any, tmp_path: Path) -> None:
    from agentcmd.workflows import served

    data = tmp_path / "data"
    fix = write_workflow("fix.py", GOOD.format(id="fix"))
    assert discover_served(project, data).workflows["fix"].source == str(fix)
    record = served.record_path(data)
    assert record.stat().st_mode & 0o777 == 0o600
    assert json.loads(record.read_text())["projects"] == {str(project): {"fix": str(fix)}}
    newcomer = write_workflow("0_fix.py", GOOD.format(id="fix"))
    found = discover_served(project, data)  # a restart
    assert found.workflows["fix"].source == str(fix) and found.duplicates[0].source == str(newcomer)
    # A reload passes what is served right now, which wins over the record.
    assert discover_served(project, data, previous=found).workflows["fix"].source == str(fix)
    # The CLI reads the record without writing it; a broken record is ignored, not fatal.
    record.write_text("{not json")
    assert discover_served(project, data, record=False).workflows["fix"].source == str(newcomer)
    assert record.read_text() == "{not json"
    assert discover_served(project, data).workflows["fix"].source == str(newcomer)
    assert json.loads(record.read_text())["projects"][str(project)] == {"fix": str(newcomer)}


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
