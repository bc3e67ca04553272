"""docs/errors.md is generated from the exception tree: current, complete, one meaning per code.

The generator imports every module of the package, so these tests run it
in a subprocess: this test process keeps only the modules it imported itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_errors_docs.py"

EXTRA = '''
from agentcmd.errors import {base}
class {name}({base}):
    """An example."""
    code = {code!r}
    fix_hint = "do this"
{name}.__module__ = "agentcmd.example"
'''


def _ask(expression: str, define: str = "") -> Any:
    """Evaluate ``expression`` with the generator imported as ``gen`` (after running ``define``)."""
    code = (f"import sys, json; sys.path.insert(0, {str(SCRIPT.parent)!r}); import gen_errors_docs as gen\n"
            f"{define}\nprint(json.dumps({expression}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_errors_reference_is_current() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_every_code_is_unique() -> None:
    codes = _ask("[c for c, _ in gen.all_codes()]")
    assert len(codes) == len(set(codes)) > 40
    assert _ask("gen.duplicates()") == []


def test_a_second_class_with_a_taken_code_is_caught() -> None:
    clashes = _ask("gen.duplicates()", EXTRA.format(base="AgentcmdError", name="MissingThingError",
                                                    code="not_found"))
    assert len(clashes) == 1
    assert clashes[0].startswith("code 'not_found' is used by both ")
    assert "NotFoundError" in clashes[0] and "MissingThingError" in clashes[0]


def test_a_new_error_class_makes_the_page_stale() -> None:
    page = _ask("gen.render()", EXTRA.format(base="NotFoundError", name="NoSuchRunError", code="no_such_run"))
    assert page != (ROOT / "docs" / "errors.md").read_text()
    assert "| `no_such_run` | 404 | 1 | An example. | do this |" in page
    assert _ask("gen.render()") == (ROOT / "docs" / "errors.md").read_text()


def _codes_in_source() -> dict[str, str]:
    """Every code literal in src: ``code="..."`` given to an error, ``"code": "..."`` written into JSON."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "src" / "agentcmd").rglob("*.py")):
        for match in re.finditer(r'\bcode\s*=\s*"([a-z_]+)"|"code":\s*"([a-z_]+)"', path.read_text()):
            found.setdefault(match.group(1) or match.group(2), str(path.relative_to(ROOT)))
    return found


def test_every_code_the_source_uses_is_documented() -> None:
    documented = {code for code, _ in _ask("gen.all_codes()")}
    missing = {code: where for code, where in _codes_in_source().items() if code not in documented}
    assert missing == {}, "add these to a class's code/variants (or OUTSIDE_THE_TREE) and regenerate"


def test_the_source_scan_finds_codes() -> None:
    assert {"not_found", "invalid_git_input", "interrupted", "sync_failed"} <= set(_codes_in_source())


def test_every_class_says_what_it_means_and_what_to_do() -> None:
    lacking = _ask('[c.__name__ for _, c in gen.walk(gen.import_all()) '
                   'if not c.__dict__.get("__doc__") or "code" not in c.__dict__ or not c.fix_hint]')
    assert lacking == []


def test_the_reference_is_linked_from_the_readme() -> None:
    assert "docs/errors.md" in (ROOT / "README.md").read_text()
