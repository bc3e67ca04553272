"""Regenerate docs/cli.md from the live ``--help`` of every command.

    .venv/bin/python scripts/gen_cli_docs.py          # rewrite docs/cli.md
    .venv/bin/python scripts/gen_cli_docs.py --check  # exit 1 if it is stale

tests/docs/test_docs.py runs the check, so the reference cannot drift.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer.main
from docpage import write_or_check  # scripts/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "cli.md"

HEADER = """# CLI reference

Generated from `--help` by `scripts/gen_cli_docs.py`; a test fails when it is stale.
"""


def command_paths() -> list[list[str]]:
    from agentcmd.cli import app

    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(cmd: Any, prefix: list[str]) -> None:
        if hasattr(cmd, "commands"):
            for name in sorted(cmd.commands):
                sub = cmd.commands[name]
                if getattr(sub, "hidden", False):
                    continue
                paths.append([*prefix, name])
                walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def help_text(path: list[str]) -> str:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "agentcmd", *path, "--help"], capture_output=True, text=True, env=env, check=True
    )
    return "\n".join(line.rstrip() for line in out.stdout.strip().splitlines())


def render() -> str:
    parts = [HEADER]
    for path in command_paths():
        title = " ".join(["agentcmd", *path])
        parts.append(f"## `{title}`\n\n```text\n{help_text(path)}\n```\n")
    return "\n".join(parts)


def main() -> int:
    text = render()
    return write_or_check(TARGET, text, "gen_cli_docs.py")


if __name__ == "__main__":
    raise SystemExit(main())
