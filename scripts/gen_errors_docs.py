"""Regenerate docs/errors.md from the exception tree (every ``AgentcmdError`` subclass in the package).

    .venv/bin/python scripts/gen_errors_docs.py          # rewrite docs/errors.md
    .venv/bin/python scripts/gen_errors_docs.py --check  # exit 1 if it is stale or a code is taken twice

Every module of ``agentcmd`` is imported, so an error class defined next to
the code that raises it is found too. Per class: its code, HTTP status, CLI
exit code, what it means (the first paragraph of its docstring) and what to
do (its ``fix_hint``); then the more precise codes some raise sites give
(``variants``). A few codes are written straight into JSON answers or run
outputs rather than raised as errors; they are listed in ``OUTSIDE_THE_TREE``.
tests/docs/test_errors_doc.py runs the check.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from docpage import write_or_check  # scripts/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "errors.md"

HEADER = """# Error codes

Generated from the exception tree (`src/agentcmd/errors.py` and the classes
beside the code that raises them) by `scripts/gen_errors_docs.py`; a test
fails when this page is stale or two errors share a code.

Every error agentcmd reports says what went wrong and what to do. The CLI
prints them as `error: ...` / `fix: ...` and exits with the error's exit
code; the engine's and the app server's HTTP APIs answer
`{"error": ..., "code": ..., "hint": ...}` with the error's HTTP status.
Scripts should match on `code`: it is stable, the wording is not.
"""

OUTSIDE_THE_TREE: tuple[tuple[str, str, str, str], ...] = (
    ("interrupted", "503", "the app server is shutting down and stopped the step it was running "
     "(header `X-Agentcmd-Interrupted`)", "nothing: the engine calls the step again when the app is back"),
    ("forbidden", "403", "the app API refused a cross-site page request, or a route this configuration "
     "does not offer", "call the API from the CLI or a script"),
    ("bad_request", "400", "the app server's SDK endpoint refused a request without a valid signature "
     "header", "send SDK calls from the engine, which signs them"),
    ("internal_error", "500", "a bug in the engine (the traceback is in its log)", "report it with the engine log"),
    ("sdk_call_failed", "", "a run's output when the app's SDK endpoint failed without an SDK error body "
     "(bad status, unreadable answer)", "see the run's history and the app server's log"),
    ("engine_error", "", "a run's output when the engine failed on the run repeatedly",
     "see the engine's log; replay the run once the cause is fixed"),
)
"""Codes written into a JSON answer or a run's output directly: (code, HTTP status, what, what to do)."""


@dataclass(frozen=True)
class Entry:
    """One documented code."""

    code: str
    http_status: str
    exit_code: str
    what: str
    fix: str


def import_all() -> type:
    import agentcmd
    from agentcmd.errors import AgentcmdError

    with warnings.catch_warnings():   # third-party deprecations on import are not ours to report here
        warnings.simplefilter("ignore", DeprecationWarning)
        for info in pkgutil.walk_packages(agentcmd.__path__, "agentcmd."):
            if info.name.rsplit(".", 1)[-1] != "__main__":
                importlib.import_module(info.name)
    return AgentcmdError


def walk(cls: type, depth: int = 0) -> Iterator[tuple[int, type]]:
    """``cls`` and every subclass defined in the package, depth first, siblings by name."""
    yield depth, cls
    for sub in sorted(cls.__subclasses__(), key=lambda c: c.__name__):
        if sub.__module__.startswith("agentcmd."):
            yield from walk(sub, depth + 1)


def _first_paragraph(cls: type) -> str:
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    return " ".join(doc.split("\n\n", 1)[0].split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def entries(cls: type) -> list[Entry]:
    """The class's own code, then the variants it declares itself (inherited ones belong to the parent)."""
    # The base's 500 is what an error nobody expected to reach HTTP gets; show only chosen statuses.
    owner = next(c for c in cls.__mro__ if "http_status" in c.__dict__)
    status = str(cls.http_status) if owner is cls or owner.__name__ != "AgentcmdError" else ""
    rows = [Entry(cls.code, status, str(cls.exit_code), _first_paragraph(cls), cls.fix_hint)]
    for code, (what, fix, *exit_code) in cls.__dict__.get("variants", {}).items():
        rows.append(Entry(code, status if cls.__bases__[0] is not Exception else "",
                          str(exit_code[0] if exit_code else cls.exit_code), what, fix))
    return rows


def all_codes() -> list[tuple[str, str]]:
    """Every documented code with where it comes from (a class name, or ``JSON`` for the fixed list)."""
    base = import_all()
    codes = [(e.code, cls.__name__) for _, cls in walk(base) for e in entries(cls)]
    return codes + [(code, "JSON") for code, *_ in OUTSIDE_THE_TREE]


def duplicates() -> list[str]:
    seen: dict[str, str] = {}
    clashes = []
    for code, owner in all_codes():
        if code in seen:
            clashes.append(f"code {code!r} is used by both {seen[code]} and {owner}")
        seen.setdefault(code, owner)
    return clashes


def render() -> str:
    base = import_all()
    tree = ["```text"]
    for depth, cls in walk(base):
        name = ("    " * depth) + cls.__name__
        tree.append(f"{name:<40} {cls.code}")
    tree.append("```")
    parts = [HEADER, "## The tree\n", "\n".join(tree) + "\n",
             "A script may catch a parent: `ConfigError` covers `InvalidSigningKeyError`, and so on. "
             "Where the HTTP column is empty the error is not answered over HTTP by itself (the CLI or a "
             "run's output shows it). The rows after a class's own code are the more precise codes some of "
             "its raise sites give.\n"]
    for _, cls in walk(base):
        parent = " and ".join(f"`{b.__name__}`" for b in cls.__bases__)
        parts.append(f"## {cls.__name__}\n")
        parts.append(f"Subclass of {parent}.\n")   # not its module: classes move, codes stay
        parts.append("| code | HTTP | exit | what it means | what to do |")
        parts.append("|---|---|---|---|---|")
        for e in entries(cls):
            parts.append(f"| `{e.code}` | {e.http_status} | {e.exit_code} | {_cell(e.what)} | {_cell(e.fix)} |")
        parts.append("")
    parts.append("## Codes outside the tree\n")
    parts.append("Written directly into a JSON answer or a failed run's output, not raised as errors.\n")
    parts.append("| code | HTTP | what it means | what to do |")
    parts.append("|---|---|---|---|")
    for code, status, what, fix in OUTSIDE_THE_TREE:
        parts.append(f"| `{code}` | {status} | {_cell(what)} | {_cell(fix)} |")
    return "\n".join(parts) + "\n"


def main() -> int:
    clashes = duplicates()
    if clashes:
        print("\n".join(clashes), file=sys.stderr)
        return 1
    text = render()
    return write_or_check(TARGET, text, "gen_errors_docs.py")


if __name__ == "__main__":
    raise SystemExit(main())
