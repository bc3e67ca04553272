"""Docs cannot drift: every setting and env var documented, --help reference current,
and the README's test command is the one CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentcmd.config.settings import SETTINGS_DOC, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_has_an_entry_in_settings_doc() -> None:
    assert set(SETTINGS_DOC) == set(Settings.model_fields)


@pytest.mark.parametrize("name", sorted(SETTINGS_DOC))
def test_every_setting_and_env_var_is_documented(name: str) -> None:
    doc = (ROOT / "docs" / "settings.md").read_text()
    example = (ROOT / ".env.example").read_text()
    assert f"`{name}`" in doc
    for var in SETTINGS_DOC[name][0]:
        assert var in doc, f"{var} missing from docs/settings.md"
    first_var = SETTINGS_DOC[name][0][0].replace("<NAME>", "CLAUDE")
    assert re.search(rf"^{re.escape(first_var)}=", example, re.M), f"{first_var} missing from .env.example"


def test_cli_reference_is_current() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


def test_readme_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)\n```", quick, re.S)
    assert len(blocks) == 2
    run_cmd, test_cmd = blocks
    assert "agentcmd dev" in run_cmd and "pip install" in run_cmd
    assert "pytest" in test_cmd and ".[test]" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_every_hop_of_the_run_path_in_the_architecture_doc_names_a_file_that_exists() -> None:
    """docs/architecture.md's table of a run's hops is the map a newcomer follows: it must not point nowhere."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("## The parts, and the one path of a run", 1)[1].split("\n## ", 1)[0]
    paths = set(re.findall(r"`((?:engine|server|workflows|web|ui|cli)/[\w/.]*)`", table))
    assert len(paths) >= 15, paths
    missing = sorted(p for p in paths if not (ROOT / "src" / "agentcmd" / p).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
