"""docs/running.md stays true: every dev/start option, the pinned inngest-cli, the exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from agentcmd.cli import app
from agentcmd.supervisor.launch import DB_FILE_NAMES, ENGINE_COMMAND_ENV, INNGEST_CLI_VERSION
from agentcmd.supervisor.supervisor import EXIT_INTERRUPTED

DOC = (Path(__file__).resolve().parents[2] / "docs" / "running.md").read_text()


@pytest.mark.parametrize("command", ["dev", "start"])
def test_every_option_of_dev_and_start_is_documented(command: str) -> None:
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    options = [opt for param in cmd.params for opt in param.opts if opt.startswith("--") and opt != "--help"]
    assert options
    missing = [opt for opt in options if f"`{opt}" not in DOC]
    assert not missing, f"docs/running.md does not mention {missing}"


def test_the_pinned_inngest_cli_version_and_file_names_are_the_real_ones() -> None:
    assert f"inngest-cli@{INNGEST_CLI_VERSION}" in DOC
    assert ENGINE_COMMAND_ENV in DOC
    for name in DB_FILE_NAMES.values():
        assert name in DOC


def test_exit_codes_table_lists_the_interrupted_code() -> None:
    assert f"| {EXIT_INTERRUPTED} |" in DOC


def test_the_startup_table_is_filled_in() -> None:
    assert "STARTUP_TABLE" not in DOC
    assert "| `agentcmd dev` |" in DOC and "| `agentcmd start` |" in DOC
